"""Exporter: the writers of what a library hands back: per-person folders, ``index.json``,
the review pages, thumbnails and chips, XMP face-region sidecars. One module each; the
export itself, which decides what to write, is a use case
(:func:`photocluster.app.export.export`):

- ``folders``: the layout of DEST, safe names, placing and removing photo entries;
- ``index_json``: ``index.json`` and the manifest of what an export wrote;
- ``thumbnails``: cutting face thumbnails and aligned face chips;
- ``pages``: the review pages as HTML, for the static export and the review app;
- ``review``: the static export's review pages (``index.html`` and ``pages/``): their links and files;
- ``render``: a person's block of ``index.json`` and its pages, here or in a second process;
- ``xmp``: MWG face regions in XMP sidecars, and keeping an export's sidecars in step;
- ``contact_sheet``: two persons' faces side by side, a row per pair, as a PNG (``suggest --ask``).

The package is not named ``export``: a submodule ``photocluster.export`` would replace the
``photocluster.export`` function once imported.

May import ``core``, ``store``, ``detect`` and ``grouping``; never ``app`` (the use cases
hand the writers the read model of :mod:`photocluster.core.readmodel`).
"""
