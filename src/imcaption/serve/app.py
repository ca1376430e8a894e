"""The FastAPI application: `POST /v1/read`, `POST /v1/caption`, `GET /healthz`, the web page at `/`, the API's
docs at `/docs` and `/redoc` (their scripts served from here, so that they work on a machine with no internet).

Bad input never reaches the model and never costs a 5xx: the body size is enforced while it arrives, an image's
pixel count is checked from its header before it is decoded, and every refusal is a JSON error naming the
problem, `{"error": {"code": ..., "message": ...}}`. Past capacity requests are refused at once (503 with
Retry-After) rather than queued without end: the images waiting for decoding and for the model are bounded, and
a request still waiting at its deadline is refused, never answered late. A model failure is a JSON 500 too; its
traceback goes to the server's log only."""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict
from importlib import resources
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image, UnidentifiedImageError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect

from imcaption import __version__
from imcaption.images import IMAGE_FORMATS, ImageSize, png_pixels, to_model_input, upright
from imcaption.serve.batcher import DeadlineExceeded, MicroBatcher, ModelError, Overloaded, QueueFull
from imcaption.serve.limits import ServiceLimits
from imcaption.serve.models import ServedModel

STATIC = resources.files("imcaption.serve") / "static"
# Swagger UI and ReDoc, the very files FastAPI's docs pages would fetch from a CDN, shipped by a PyPI package.
DOCS_ASSETS = resources.files("fastapi_offline") / "static"
RAW_TYPES = ("application/octet-stream",)


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def overloaded_error(err: Overloaded) -> ServiceError:
    code = "deadline_exceeded" if isinstance(err, DeadlineExceeded) else "overloaded"
    return ServiceError(503, code, str(err), {"Retry-After": str(err.retry_after)})


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
    thread competes with them for the interpreter: here one costs about half what it cost through FastAPI's
    routing and exception handlers (0.13 ms against 0.25 ms of a 2-core machine's worker process)."""

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


async def uploaded_images(request: Request, limits: ServiceLimits) -> list[tuple[str, bytes]]:
    """(name, bytes) of each image in a multipart upload (any file fields) or a raw image body."""
    mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if mime == "multipart/form-data":
        try:
            form = await request.form(max_files=limits.max_images, max_fields=limits.max_images + 16)
        except ClientDisconnect:
            raise ServiceError(400, "client_disconnected", "the client left before the body arrived") from None
        except (MultiPartException, StarletteHTTPException, AssertionError, ValueError) as err:
            detail = getattr(err, "detail", None) or getattr(err, "message", None) or str(err)
            if "Too many files" in str(detail):
                raise ServiceError(413, "too_many_images", f"at most {limits.max_images} images per request") from None
            raise ServiceError(400, "bad_multipart", f"cannot parse the multipart body: {detail}") from None
        files = [value for _, value in form.multi_items() if not isinstance(value, str)]
        if not files:
            raise ServiceError(400, "no_image", "the multipart body has no file field; send the image as a file")
        images = [(f.filename or f"image {n}", await f.read()) for n, f in enumerate(files)]
        await form.close()
        return images
    if mime.startswith("image/") or mime in RAW_TYPES:
        try:
            body = await request.body()
        except ClientDisconnect:
            raise ServiceError(400, "client_disconnected", "the client left before the body arrived") from None
        if not body:
            raise ServiceError(400, "empty_body", "the request body is empty; send the image's bytes")
        return [("body", body)]
    got = f"Content-Type {mime!r}" if mime else "no Content-Type"
    raise ServiceError(415, "unsupported_media_type", f"send multipart/form-data or raw image bytes; got {got}")


def decode_upload(name: str, data: bytes, size: ImageSize, max_pixels: int) -> np.ndarray:
    """One upload -> the model's (H, W, 3) uint8 input, or a ServiceError that names the image and the problem."""
    if not data:
        raise ServiceError(422, "empty_image", f"{name}: the file is empty")
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ServiceError(413, "image_too_large",
                                   f"{name}: {width}x{height} is over the limit of {max_pixels:,} pixels")  # fmt: skip
            pixels = png_pixels(image, data)
            if pixels is not None:
                return to_model_input(pixels, size)
            image.load()
            return to_model_input(upright(image), size)
    except ServiceError:
        raise
    except Image.DecompressionBombError:  # Pillow's own guard, met before ours on absurd sizes
        raise ServiceError(413, "image_too_large", f"{name}: over the limit of {max_pixels:,} pixels") from None
    except UnidentifiedImageError:
        formats = ", ".join(IMAGE_FORMATS)
        raise ServiceError(422, "not_an_image", f"{name}: not an image in a format read here ({formats})") from None
    except Exception as err:  # Pillow raises many kinds for damaged files; every one is the client's problem
        raise ServiceError(422, "not_an_image", f"{name}: cannot decode it as an image ({err})") from None


def reading_json(result: dict[str, Any], attention: bool) -> dict[str, Any]:
    word = result["word"]
    out = {
        "word": word,
        "confidence": round(float(result["confidence"]), 6),
        "characters": [
            {"char": char, "confidence": round(float(p), 6)}
            for char, p in zip(word, result["char_confidences"], strict=True)
        ],
    }
    if attention and result["attention"] is not None:
        out["attention"] = np.round(result["attention"][: len(word)].astype(np.float64), 5).tolist()
    return out


def caption_json(result: dict[str, Any], attention: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"caption": result["caption"]}
    if attention and result["attention"] is not None:
        out["attention"] = np.round(result["attention"].astype(np.float64), 5).tolist()
    return out


UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"image": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                }
            },
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


class Decoders:
    """Uploads decode in threads: the PNG decoder and Pillow's resize let go of the GIL, so while one worker
    process has more connections than the other (keep-alive clients stay with the worker that accepted them),
    its decoding spreads over the cores the other leaves idle, instead of queueing on its event loop. A thread
    pool's queue has no bound, so the images admitted are counted here, `max_queue` at most."""

    def __init__(self, max_queue: int) -> None:
        self.pool = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="decode")
        self.max_queue, self.admitted = max_queue, 0
        self.refused_full = self.refused_deadline = 0

    def check_room(self, images: int = 1) -> None:
        """QueueFull unless `images` more may wait for decoding."""
        if self.admitted + images > self.max_queue:
            self.refused_full += 1
            raise QueueFull(f"the service is at capacity: {self.admitted} images wait for decoding, the limit is "
                            f"{self.max_queue}; try again shortly", 1)  # fmt: skip

    async def decode(self, uploads: list[tuple[str, bytes]], size: ImageSize, max_pixels: int,
                     deadline: float) -> np.ndarray:  # fmt: skip
        """The uploads as one (n, H, W, 3) batch; QueueFull if there is no room, DeadlineExceeded past `deadline`
        (an image still waiting for a thread then is never decoded)."""
        self.check_room(len(uploads))
        self.admitted += len(uploads)
        loop = asyncio.get_running_loop()
        try:
            decoded = []
            for name, data in uploads:
                job = loop.run_in_executor(self.pool, decode_upload, name, data, size, max_pixels)
                try:
                    decoded.append(await asyncio.wait_for(job, max(0.0, deadline - time.monotonic())))
                except TimeoutError:
                    self.refused_deadline += 1
                    raise DeadlineExceeded("the service is overloaded: the request's images were not decoded "
                                           "before its deadline; try again shortly", 1) from None  # fmt: skip
            return np.stack(decoded)
        finally:
            self.admitted -= len(uploads)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True)


def create_app(model: ServedModel, limits: ServiceLimits | None = None) -> FastAPI:
    limits = limits or ServiceLimits()
    batcher = MicroBatcher(model.run, limits.batch_window_ms / 1000, limits.max_batch, limits.max_queue)
    decoders = Decoders(limits.max_queue)

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # noqa: ANN202
        batcher.start()
        yield
        await batcher.stop()
        decoders.shutdown()

    # The docs pages are our own below: FastAPI's would load their scripts from a CDN.
    app = FastAPI(title="imcaption", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Read word captchas or caption images with an imcaption model.")  # fmt: skip
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes, timeout=limits.body_timeout_s)

    def check_room() -> None:
        decoders.check_room()
        batcher.check_room()

    app.add_middleware(Shed, check_room=check_room)  # added last: the outermost

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, err: ServiceError) -> JSONResponse:
        return error_response(err.status, err.code, err.message, err.headers)

    @app.exception_handler(Exception)
    async def internal_error(_: Request, err: Exception) -> JSONResponse:
        # Starlette sends this answer, then raises the exception on to uvicorn, which logs its traceback.
        return error_response(500, "internal_error", "the server failed on this request; its log has the details")

    @app.exception_handler(RequestValidationError)
    async def invalid_parameter(_: Request, err: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        return error_response(422, "invalid_parameter", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        return error_response(err.status_code, "http_error", str(err.detail))

    async def answer(request: Request, task: str, attention: bool) -> Any:
        if model.task != task:
            other = "/v1/read" if model.task == "read" else "/v1/caption"
            raise ServiceError(409, "wrong_task", f"this server runs a {model.info['model']} model for {other}")
        uploads = await uploaded_images(request, limits)
        if len(uploads) > limits.max_images:
            raise ServiceError(413, "too_many_images", f"at most {limits.max_images} images per request")
        # The deadline runs from the moment the body is in: the upload is the client's time, bounded on its own
        # (body_timeout_s), and a slow link's upload is not wasted on a refusal at its end.
        begun = time.monotonic()
        deadline = begun + limits.deadline_ms / 1000
        try:
            pixels = await decoders.decode(uploads, model.size, limits.max_pixels, deadline)
            results = await batcher.run(pixels, deadline)
        except Overloaded as err:
            raise overloaded_error(err) from None
        except ModelError:  # the batcher logged the traceback, once for the whole model call
            raise ServiceError(500, "internal_error", "the model failed on this request; the server's log has "
                               "the details") from None  # fmt: skip
        shape = reading_json if task == "read" else caption_json
        answers = [shape(result, attention) for result in results]
        # The service's own time (decoding, queues, model), the part the deadline bounds: a client's clock would
        # add the upload and its own delays.
        timing = {"Server-Timing": f"service;dur={1000 * (time.monotonic() - begun):.1f}"}
        # A response of our own JSON: FastAPI's encoder would walk every number of it again.
        return JSONResponse(answers[0] if len(answers) == 1 else {"results": answers}, headers=timing)

    @app.post("/v1/read", openapi_extra=UPLOAD_DOC, summary="read the word in each captcha image")
    async def read(request: Request, attention: bool = False) -> Any:
        """One image -> `{word, confidence, characters: [{char, confidence}]}` (plus `attention`, one grid per
        character, with `?attention=true`); several -> `{"results": [...]}` in upload order."""
        return await answer(request, "read", attention)

    @app.post("/v1/caption", openapi_extra=UPLOAD_DOC, summary="caption each image")
    async def caption(request: Request, attention: bool = False) -> Any:
        """One image -> `{caption}` (plus `attention` with `?attention=true` for sat captioners); several ->
        `{"results": [...]}`."""
        return await answer(request, "caption", attention)

    @app.get("/healthz", summary="liveness and what is served; batches, images and load count this worker "
             "process's")  # fmt: skip
    async def healthz() -> dict[str, Any]:
        # Answered on the event loop, never through the queues: it stays quick while the model is overloaded.
        load = {"waiting_images": batcher.waiting_images, "decoding_images": decoders.admitted,
                "refused_queue_full": batcher.refused_full + decoders.refused_full,
                "refused_deadline": batcher.refused_deadline + decoders.refused_deadline}  # fmt: skip
        return {"status": "ok", "version": __version__, **model.info, "limits": asdict(limits),
                "worker": os.getpid(), "batches": batcher.batches, "images": batcher.images, "load": load}  # fmt: skip

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon.png")  # fmt: skip

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=app.openapi_url, title=f"{app.title} API", with_google_fonts=False,
                              redoc_js_url="/docs-assets/redoc.standalone.js",
                              redoc_favicon_url="/docs-assets/favicon.png")  # fmt: skip

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"))

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.mount("/docs-assets", StaticFiles(directory=str(DOCS_ASSETS)), name="docs-assets")
    return app
