"""Exporter: what a library hands back: per-person folders, ``index.json``, the review
page, thumbnails and chips, XMP face-region sidecars. One module each, one orchestrator
(:func:`photocluster.exporter.run.export`).

May import ``core``, ``store``, ``detect``, ``grouping`` and ``app`` (for listings).
"""
