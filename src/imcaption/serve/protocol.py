"""uvicorn's HTTP protocol (httptools) with a guard the service needs and uvicorn lacks, and its errors in JSON.

A deadline on each request's headers: uvicorn times out idle keep-alive connections, but not one that opens and
sends its headers a byte at a time; a few hundred of those would hold every connection `limit_concurrency`
allows, and the service would refuse everybody else. And the answers uvicorn gives itself (past
`limit_concurrency`, to a request it cannot parse) in the service's JSON error shape rather than plain text."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

FULL = "the service has as many connections as it takes; try again shortly"
OVERLOADED = json.dumps({"error": {"code": "overloaded", "message": FULL}}).encode()


async def overloaded(scope: dict, receive: Any, send: Any) -> None:
    """What uvicorn answers past `limit_concurrency` (connection: close, as uvicorn's own), as JSON."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(OVERLOADED)).encode()),
               (b"retry-after", b"1"), (b"connection", b"close")]  # fmt: skip
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": OVERLOADED, "more_body": False})


def raw_error(status: str, code: str, message: str) -> bytes:
    """A whole HTTP response with the service's JSON error, for answers written before any ASGI app runs."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    return head.encode() + b"connection: close\r\n\r\n" + body


class GuardedHttpProtocol(HttpToolsProtocol):
    """Each request's headers must arrive whole within `header_timeout` seconds of the connection opening or of
    the request's first byte; else the connection gets a JSON 408 and is closed."""

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # a keep-alive connection's next request

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        super()._start_asgi_task(cycle, overloaded if app is service_unavailable else app)

    def _arm(self) -> None:
        if self.header_timer is None:  # the connection's timer runs on from its opening into its first request
            self.header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _headers_late(self) -> None:
        self.header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request's headers are late while the one before is still answered: wait for that answer.
            self._arm()
            return
        message = f"the request's headers did not arrive within {self.header_timeout:g} s"
        self.transport.write(raw_error("408 Request Timeout", "header_timeout", message))
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """What uvicorn answers a request it cannot parse, as JSON rather than plain text."""
        self.transport.write(raw_error("400 Bad Request", "bad_request", msg))
        self.transport.close()
