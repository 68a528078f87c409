"""The review app: ``photocluster review`` serves the review pages from the database on
127.0.0.1 and takes corrections from them (rename, merge, move, remove, ignore, answer a
suggestion, undo), each through :mod:`photocluster.app.corrections` or
:mod:`photocluster.app.suggest`, so the CLI's ``history`` and ``undo`` see them.

- ``app``: the Starlette application (routes, the token and same-origin checks);
- ``server``: binding 127.0.0.1, printing the URL, running uvicorn.

Starlette and uvicorn come with the default install (the extra ``review`` is an empty alias).
May import ``core``, ``store``, ``detect``, ``grouping``, ``exporter`` (the pages' HTML) and
``app``; sits beside ``eval``.
"""
