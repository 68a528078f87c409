"""Exporter: what a library hands back: per-person folders, ``index.json``, the review
pages, thumbnails and chips, XMP face-region sidecars. One module each, one orchestrator
(:func:`photocluster.exporter.run.export`):

- ``folders``: the layout of DEST, safe names, placing and removing photo entries;
- ``index_json``: ``index.json`` and the manifest of what an export wrote;
- ``thumbnails``: face thumbnails and aligned face chips;
- ``review``: the review pages (``index.html`` and ``pages/``; their HTML is ``app.pages``');
- ``xmp``: MWG face regions in XMP sidecars, and keeping an export's sidecars in step.

The package is not named ``export``: a submodule ``photocluster.export`` would replace the
``photocluster.export`` function once imported.

May import ``core``, ``store``, ``detect``, ``grouping`` and ``app`` (for listings).
"""
