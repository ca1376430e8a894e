"""The ASGI middlewares in front of the application: `Shed`, the outermost, refuses a request for the model at once
when the service is at capacity; `BodyLimit` bounds the headers, the body and the time the body takes to arrive,
before anything reads it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from imcaption.serve.batcher import Overloaded
from imcaption.serve.errors import ServiceError, error_response, overloaded_error

__all__ = ["MAX_HEADER_BYTES", "MODEL_PATHS", "BodyLimit", "Shed"]

# Far above what a browser or curl sends (a few hundred bytes), far below what would cost memory.
MAX_HEADER_BYTES = 16 * 1024


class BodyLimit:
    """ASGI middleware: refuses oversized headers and a declared Content-Length over the limit before reading
    anything, stops a body (chunked or lying about its length) as soon as it passes the limit, and one that has
    not arrived whole `timeout` seconds after its headers (a client sending a byte a second holds a connection
    and a growing buffer for as long as it likes otherwise)."""

    def __init__(self, app: Any, max_bytes: int, timeout: float = 60.0) -> None:
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header_bytes = sum(len(name) + len(value) for name, value in scope["headers"])
        if header_bytes > MAX_HEADER_BYTES:
            message = f"request headers are {header_bytes:,} bytes, over the limit of {MAX_HEADER_BYTES:,}"
            await error_response(431, "headers_too_large", message)(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            problem = "is not a number" if not declared.isdigit() else f"is over the limit of {self.max_bytes:,} bytes"
            status = 400 if not declared.isdigit() else 413
            await error_response(status, "body_too_large" if status == 413 else "bad_length",
                                 f"Content-Length {problem}")(scope, receive, send)  # fmt: skip
            return
        received, deadline = 0, time.monotonic() + self.timeout

        async def limited_receive() -> dict:
            nonlocal received
            try:
                async with asyncio.timeout(deadline - time.monotonic()):
                    message = await receive()
            except TimeoutError:
                # connection: close, since the rest of the body may still be on its way.
                raise ServiceError(408, "body_timeout", f"the request body did not arrive within {self.timeout:g} s",
                                   {"Connection": "close"}) from None  # fmt: skip
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    limit = f"{self.max_bytes:,} bytes"
                    raise ServiceError(413, "body_too_large", f"request body is over the limit of {limit}")
            return message

        await self.app(scope, limited_receive, send)


MODEL_PATHS = ("/v1/read", "/v1/caption")


class Shed:
    """ASGI middleware, the outermost: at capacity a request for the model is refused before anything else is
    done for it (no routing, no body read). Past capacity refusals come by the thousand a second, and the model's
    thread competes with them for the interpreter: here one costs less than through FastAPI's routing and
    exception handlers (measured in a 2-core machine's worker process)."""

    def __init__(self, app: Any, check_room: Callable[[], None]) -> None:
        self.app, self.check_room = app, check_room

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] in MODEL_PATHS:
            try:
                self.check_room()
            except Overloaded as err:
                error = overloaded_error(err)
                await error_response(error.status, error.code, error.message, error.headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)
