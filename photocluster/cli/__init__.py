"""CLI: the typer app. Each command parses options, calls one use case and renders the
result with rich; errors are rendered here, once.

May import any layer; imports neither dlib nor sqlite3.
"""

from photocluster.cli.commands import app, main

__all__ = ["app", "main"]
