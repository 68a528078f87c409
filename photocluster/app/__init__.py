"""App: the use cases (scan, recluster, recognise, corrections, listing), each combining
the layers below.

May import ``core``, ``store``, ``detect`` and ``grouping``; never ``exporter``, ``eval`` or ``cli``.
"""
