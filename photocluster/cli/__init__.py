"""CLI: the typer app. Each command parses options, calls one use case and renders the
result with rich; errors are rendered here, once.

One module per command group (:mod:`~photocluster.cli.scan`, ``clusters``, ``corrections``,
``people``, ``export``, ``doctor``, ``eval``), each importing only
:mod:`~photocluster.cli.common`; :mod:`~photocluster.cli.application` builds the app from them.

May import any layer; imports neither dlib nor sqlite3.
"""

from photocluster.cli.application import app, main

__all__ = ["app", "main"]
