"""``photocluster review``: the review app, served from the database on 127.0.0.1."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from typing import Annotated

import typer

from photocluster.cli.common import DbOption, err, handle_errors
from photocluster.core.config import resolve_db_path
from photocluster.core.errors import UsageError

# Both come with photocluster; they are missing only after `pip install --no-deps`.
INSTALL_HINT = "the review app needs Starlette and uvicorn, which photocluster installs: pip install starlette uvicorn"


def review(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: a free one).", min=0, max=65535)] = 0,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Print the URL only; open no browser.")] = False,
    db: DbOption = None,
) -> None:
    """Review and correct the persons in your browser: rename, merge, move or remove faces,
    ignore strangers, answer "same person?", undo. Serves 127.0.0.1 only; the first line
    printed is the address, with a token that every request must carry. Ctrl-C stops it.

    Example: photocluster review --port 8765
    """
    with handle_errors():
        missing = [m for m in ("starlette", "uvicorn") if importlib.util.find_spec(m) is None]
        if missing:
            raise UsageError(INSTALL_HINT)
        path = resolve_db_path(db)
        if not path.is_file():
            raise UsageError(f"{path}: no database here yet (run photocluster scan first, or give --db)")
        from photocluster.web.server import bind, open_browser_soon

        server = bind(path, port)
        sys.stdout.write(server.url + "\n")
        sys.stdout.flush()
        if not no_browser:
            open_browser_soon(server.url)
        err.print("Serving the review app; Ctrl-C stops it.")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve()
