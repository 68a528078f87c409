"""App: the use cases (scan, recluster, recognise, corrections, listing, export), each
combining the layers below. ``export`` writes through the writers of ``exporter``;
``thumbs`` keeps every face's thumbnail in the store for the export and the review app.

May import ``core``, ``store``, ``detect``, ``grouping`` and ``exporter``; never ``eval``,
``web`` or ``cli``.
"""
