"""Running the review app: 127.0.0.1 only, a random token, the URL printed first."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photocluster.core.errors import UsageError

HOST = "127.0.0.1"


@dataclass
class Server:
    """A review app bound to a port of 127.0.0.1, not yet serving. ``url`` carries the token."""

    url: str
    port: int
    token: str
    _sock: socket.socket
    _server: Any

    def serve(self) -> None:
        """Serve until :meth:`stop` (or Ctrl-C in the main thread)."""
        self._server.run(sockets=[self._sock])

    def stop(self) -> None:
        self._server.should_exit = True

    @property
    def started(self) -> bool:
        return bool(self._server.started)


def bind(db_path: str | os.PathLike[str], port: int = 0) -> Server:
    """The review app over ``db_path`` on ``127.0.0.1:port`` (0: a free port), bound now
    (so the URL is known, and a port in use is a clear error, before anything is served)."""
    import uvicorn

    from photocluster.web.app import create_app

    token = secrets.token_urlsafe(24)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {HOST}:{port} ({exc.strerror}); choose another --port") from None
    sock.listen(128)
    bound = int(sock.getsockname()[1])
    config = uvicorn.Config(
        create_app(Path(db_path), token), log_level="warning", access_log=False, lifespan="on", workers=1
    )
    return Server(f"http://{HOST}:{bound}/?token={token}", bound, token, sock, uvicorn.Server(config))


def open_browser_soon(url: str, delay_s: float = 0.5) -> Callable[[], None]:
    """Open ``url`` in the user's browser once the server had a moment to start; returns a cancel."""
    timer = threading.Timer(delay_s, webbrowser.open, args=(url,))
    timer.daemon = True
    timer.start()
    return timer.cancel
