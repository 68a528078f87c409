"""The review app: ``photocluster review`` serves the review pages from the database on
127.0.0.1 and takes corrections from them (rename, merge, move, remove, ignore, answer a
suggestion, undo), each through :mod:`photocluster.app.corrections` or
:mod:`photocluster.app.suggest`, so the CLI's ``history`` and ``undo`` see them.

- ``app``: the Starlette application (routes, the session and same-origin checks, the
  security headers);
- ``auth``: the session token, the form token and the one-time launch codes;
- ``photos``: a photo's bytes, only from the regular file that was scanned;
- ``protocol``: uvicorn's HTTP protocol with a deadline on reading each request;
- ``server``: checking the database, binding 127.0.0.1, the launch address, running uvicorn.

Starlette and uvicorn come with the default install (the extra ``review`` is an empty alias).
May import ``core``, ``store``, ``detect``, ``grouping``, ``exporter`` (the pages' HTML) and
``app``; sits beside ``eval``.
"""
