"""Uploads to images: the image files of a request (multipart or a raw body), each decoded into the model's input
in a thread with its pixel count checked from its header first, and the OpenAPI description of such a request.
Every problem with an upload is a ServiceError that names the image and the problem; none reaches the model."""

from __future__ import annotations

import asyncio
import io
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from fastapi import Request
from PIL import Image, UnidentifiedImageError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect

from imcaption.images import IMAGE_FORMATS, ImageSize, png_pixels, to_model_input, upright
from imcaption.serve.batcher import DeadlineExceeded, QueueFull
from imcaption.serve.errors import ServiceError
from imcaption.serve.limits import ServiceLimits

__all__ = ["RAW_TYPES", "UPLOAD_DOC", "Decoders", "decode_upload", "uploaded_images"]

RAW_TYPES = ("application/octet-stream",)


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
