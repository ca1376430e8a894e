"""The FastAPI application: `POST /v1/read`, `POST /v1/caption`, `GET /healthz`, the web page at `/`.

Bad input never reaches the model and never costs a 5xx: the body size is enforced while it arrives, an image's
pixel count is checked from its header before it is decoded, and every refusal is a JSON error naming the
problem, `{"error": {"code": ..., "message": ...}}`."""

from __future__ import annotations

import asyncio
import io
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict
from importlib import resources
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image, UnidentifiedImageError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect

from imcaption import __version__
from imcaption.images import ImageSize, png_pixels, to_model_input, upright
from imcaption.serve.batcher import MicroBatcher
from imcaption.serve.limits import ServiceLimits
from imcaption.serve.models import ServedModel

STATIC = resources.files("imcaption.serve") / "static"
RAW_TYPES = ("application/octet-stream",)
# Raster formats only: Pillow would also open EPS (through Ghostscript) and other formats a service has no use for.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


# Far above what a browser or curl sends (a few hundred bytes), far below what would cost memory.
MAX_HEADER_BYTES = 16 * 1024


class BodyLimit:
    """ASGI middleware: refuses oversized headers and a declared Content-Length over the limit before reading
    anything, and stops a body (chunked or lying about its length) as soon as it passes the limit."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

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
        received = 0

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    limit = f"{self.max_bytes:,} bytes"
                    raise ServiceError(413, "body_too_large", f"request body is over the limit of {limit}")
            return message

        await self.app(scope, limited_receive, send)


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


def create_app(model: ServedModel, limits: ServiceLimits | None = None) -> FastAPI:
    limits = limits or ServiceLimits()
    batcher = MicroBatcher(model.run, limits.batch_window_ms / 1000, limits.max_batch)
    # Uploads decode in threads: the PNG decoder and Pillow's resize let go of the GIL, so while one worker
    # process has more connections than the other (keep-alive clients stay with the worker that accepted them),
    # its decoding spreads over the cores the other leaves idle, instead of queueing on its event loop.
    decoders = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="decode")

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # noqa: ANN202
        batcher.start()
        yield
        await batcher.stop()
        decoders.shutdown(wait=True)

    app = FastAPI(title="imcaption", version=__version__, lifespan=lifespan,
                  description="Read word captchas or caption images with an imcaption model.")  # fmt: skip
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, err: ServiceError) -> JSONResponse:
        return error_response(err.status, err.code, err.message)

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
        size, max_pixels = model.size, limits.max_pixels
        loop = asyncio.get_running_loop()
        decoded = [await loop.run_in_executor(decoders, decode_upload, name, data, size, max_pixels)
                   for name, data in uploads]  # fmt: skip
        results = await batcher.run(np.stack(decoded))
        shape = reading_json if task == "read" else caption_json
        answers = [shape(result, attention) for result in results]
        # A response of our own JSON: FastAPI's encoder would walk every number of it again.
        return JSONResponse(answers[0] if len(answers) == 1 else {"results": answers})

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

    @app.get("/healthz", summary="liveness and what is served; batches and images count this worker process's")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, **model.info, "limits": asdict(limits),
                "worker": os.getpid(), "batches": batcher.batches, "images": batcher.images}  # fmt: skip

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"))

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app
