"""uvicorn's HTTP/1.1 protocol with a deadline on reading each request.

uvicorn times out a keep-alive connection that is idle after a response, but not one that
never finishes its request: a client that opens a connection and sends nothing, or sends
its headers a byte every few seconds (slowloris), holds a connection for as long as it
likes. Here each request, its headers and its body, must arrive within
:attr:`DeadlineH11Protocol.read_timeout_s` of its first byte (of the connection, for the
first request), else the connection is closed. The time the app takes to answer is not
counted.

Imports uvicorn and h11 (the review extra); imported only when the app is served.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

READ_TIMEOUT_S = 10.0


class DeadlineH11Protocol(H11Protocol):
    """:class:`H11Protocol` closing a connection whose request is not read in time."""

    read_timeout_s = READ_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            self._disarm()
        elif self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            # A request begun and not read whole yet (a keep-alive connection's next
            # request starts its own deadline with its first byte).
            if self._deadline is None:
                self._arm()
        else:
            self._disarm()  # read whole: answering it is the app's time, not the client's

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.read_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self.transport.close()
