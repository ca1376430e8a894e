"""The FastAPI application: `POST /v1/read`, `POST /v1/caption`, `GET /healthz`, the web page at `/`, the API's
docs at `/docs` and `/redoc` (their scripts served from here, so that they work on a machine with no internet).

Bad input never reaches the model and never costs a 5xx: the body size is enforced while it arrives, an image's
pixel count is checked from its header before it is decoded, and every refusal is a JSON error naming the
problem, `{"error": {"code": ..., "message": ...}}`. Past capacity requests are refused at once (503 with
Retry-After) rather than queued without end: the images waiting for decoding and for the model are bounded, and
a request still waiting at its deadline is refused, never answered late. A model failure is a JSON 500 too; its
traceback goes to the server's log only."""

from __future__ import annotations

import os
import time
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
from starlette.exceptions import HTTPException as StarletteHTTPException

from imcaption.serve.batcher import MicroBatcher, ModelError, Overloaded
from imcaption.serve.errors import ServiceError, error_response, overloaded_error
from imcaption.serve.limits import ServiceLimits
from imcaption.serve.middleware import BodyLimit, Shed
from imcaption.serve.models import ServedModel
from imcaption.serve.uploads import UPLOAD_DOC, Decoders, decode_upload, uploaded_images
from imcaption.version import __version__

# The errors, the middlewares and the uploads were defined here before the application was split by job; the names
# other code imports from this module stay importable from it.
__all__ = ["ServiceError", "caption_json", "create_app", "decode_upload", "overloaded_error", "reading_json"]

STATIC = resources.files("imcaption.serve") / "static"
# Swagger UI and ReDoc, the very files FastAPI's docs pages would fetch from a CDN, shipped by a PyPI package.
DOCS_ASSETS = resources.files("fastapi_offline") / "static"


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


def create_app(model: ServedModel, limits: ServiceLimits | None = None) -> FastAPI:
    limits = limits or ServiceLimits()
    batcher = MicroBatcher(model.run, limits.batch_window_ms / 1000, limits.max_batch, limits.max_queue)
    decoders = Decoders(limits.max_queue)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
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
