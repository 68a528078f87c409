"""Core: the types, settings and errors every layer shares.

Imports nothing from photocluster outside ``core``; everything may import it.
"""
