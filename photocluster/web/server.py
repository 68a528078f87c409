"""Running the review app: the database checked first, 127.0.0.1 only, a launch address
printed first (see :mod:`photocluster.web.auth`), connections with deadlines.

uvicorn is configured for one person on one machine, against a local user who is not:
each request must be read within :data:`~photocluster.web.protocol.READ_TIMEOUT_S`
(:class:`~photocluster.web.protocol.DeadlineH11Protocol`), an idle keep-alive connection
closes after :data:`KEEP_ALIVE_S`, request headers are at most :data:`MAX_HEADER_BYTES`,
and beyond :data:`MAX_CONNECTIONS` open connections new requests get a 503.
"""

from __future__ import annotations

import os
import socket
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photocluster.core.errors import UsageError
from photocluster.store import Store
from photocluster.web.auth import LAUNCH_TTL_S, Gate

HOST = "127.0.0.1"
KEEP_ALIVE_S = 5
MAX_HEADER_BYTES = 16 * 1024
MAX_CONNECTIONS = 512
# The address printed on the terminal waits longer for its browser than the browser's own.
PRINTED_TTL_S = 10 * 60.0


@dataclass
class Server:
    """A review app bound to a port of 127.0.0.1, not yet serving. ``url`` is a launch
    address (good once, for :data:`PRINTED_TTL_S`); :meth:`launch_url` makes another."""

    url: str
    port: int
    gate: Gate
    _sock: socket.socket
    _server: Any

    def launch_url(self, ttl_s: float = LAUNCH_TTL_S) -> str:
        return f"http://{HOST}:{self.port}/launch?code={self.gate.launch_code(ttl_s)}"

    def serve(self) -> None:
        """Serve until :meth:`stop` (or Ctrl-C in the main thread)."""
        self._server.run(sockets=[self._sock])

    def stop(self) -> None:
        self._server.should_exit = True

    @property
    def started(self) -> bool:
        return bool(self._server.started)


def check_database(db_path: str | os.PathLike[str]) -> None:
    """Raise the store's one-line error now (broken, from a newer photocluster, read-only)
    rather than from the server once it is serving."""
    with Store(db_path) as store:
        store.check_writable()


def bind(db_path: str | os.PathLike[str], port: int = 0, *, read_timeout_s: float | None = None) -> Server:
    """The review app over ``db_path`` on ``127.0.0.1:port`` (0: a free port), bound now
    (so the URL is known, and a port in use is a clear error, before anything is served).
    The database is checked first. ``read_timeout_s``: the deadline on reading a request."""
    import uvicorn

    from photocluster.web.app import create_app
    from photocluster.web.protocol import DeadlineH11Protocol

    check_database(db_path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {HOST}:{port} ({exc.strerror}); choose another --port") from None
    sock.listen(128)
    bound = int(sock.getsockname()[1])
    gate = Gate()
    protocol = DeadlineH11Protocol
    if read_timeout_s is not None:

        class _Protocol(DeadlineH11Protocol):
            pass

        _Protocol.read_timeout_s = read_timeout_s
        protocol = _Protocol
    config = uvicorn.Config(
        create_app(Path(db_path), gate),
        http=protocol,
        log_level="warning",
        access_log=False,
        lifespan="on",
        workers=1,
        timeout_keep_alive=KEEP_ALIVE_S,
        limit_concurrency=MAX_CONNECTIONS,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        server_header=False,
    )
    url = f"http://{HOST}:{bound}/launch?code={gate.launch_code(PRINTED_TTL_S)}"
    return Server(url, bound, gate, sock, uvicorn.Server(config))


def open_browser_soon(server: Server, delay_s: float = 0.5) -> Callable[[], None]:
    """Open a launch address of its own in the user's browser once the server had a moment
    to start; returns a cancel. The launcher's command line holds that code only."""
    timer = threading.Timer(delay_s, webbrowser.open, args=(server.launch_url(),))
    timer.daemon = True
    timer.start()
    return timer.cancel
