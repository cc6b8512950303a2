"""uvicorn's h11 protocol with a deadline on request headers.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but has no limit on how long a
connection may take to send its request line and headers: a client that connects and sends nothing,
or one byte at a time, holds a connection slot for ever, and enough of them make uvicorn answer 503
to everyone (``limit_concurrency``). Here each connection must send complete headers within
``header_timeout_s`` of opening, or of its previous response; otherwise it is closed. Bodies have
their own deadline in the app (``desta.serve.parse.read_body``).
"""

from __future__ import annotations

import asyncio
from typing import Any


def header_deadline_protocol(header_timeout_s: float) -> type:
    """A subclass of uvicorn's ``H11Protocol`` closing connections whose headers are late."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadlineProtocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout_s, self._headers_late)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # a request's headers are complete
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm()  # the next request on this keep-alive connection has the same deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderDeadlineProtocol
