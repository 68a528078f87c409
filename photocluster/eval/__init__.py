"""Eval: accuracy measured through the same code users run (pairs, clusters,
calibration), its metrics and plots.

May import ``core``, ``store``, ``detect``, ``grouping``, ``exporter`` and ``app``; sits
beside ``web``.
"""
