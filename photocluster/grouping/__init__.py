"""Grouping: pure functions over arrays of descriptors. Neighbour graphs (exact and the
inverted-file index), Chinese whispers, constraints (same photo, pins, rejections) and
matching new clusters to earlier persons.

Imports only ``core`` and numpy; never the store, never dlib.
"""
