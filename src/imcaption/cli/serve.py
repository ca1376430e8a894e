"""`imcaption serve MODEL`: the HTTP service and its web page. Parsing only."""

from __future__ import annotations

import argparse

from imcaption.cli.common import positive_int
from imcaption.serve.limits import ServiceLimits
from imcaption.serve.settings import RECOGNIZER_BACKENDS, ServeSettings, default_workers

DEFAULTS = ServiceLimits()


def cmd_serve(args: argparse.Namespace) -> int:
    from imcaption.serve.workers import serve

    limits = ServiceLimits(
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_pixels=int(args.max_megapixels * 1_000_000),
        max_images=args.max_images,
        batch_window_ms=args.batch_window_ms,
        max_batch=args.max_batch,
        max_queue=args.max_queue,
        deadline_ms=args.deadline_ms,
        header_timeout_s=args.header_timeout_s,
        body_timeout_s=args.body_timeout_s,
        max_connections=args.max_connections,
        keep_alive_s=args.keep_alive_s,
    )
    serve(ServeSettings(args.model, args.backend, limits, args.workers), args.host, args.port, args.log_level)
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    text = "serve a recognizer or captioner over HTTP: POST /v1/read, /v1/caption, a web page at /, docs at /docs"
    serve = commands.add_parser("serve", help=text, description=text)
    serve.add_argument("model", metavar="MODEL", help="a checkpoint, a weights-only export or an .onnx file")
    serve.add_argument(
        "--backend",
        default="auto",
        choices=RECOGNIZER_BACKENDS,
        help="what runs a recognizer: auto is PyTorch where the CPU has bf16 in hardware, else ONNX Runtime "
        "(default: %(default)s)",
    )
    serve.add_argument(
        "--workers",
        type=positive_int,
        default=default_workers(),
        help="server processes, each with its own model (default: one per core, at most 4: %(default)s)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="(default: 8000)")
    serve.add_argument(
        "--max-body-mb",
        type=float,
        default=DEFAULTS.max_body_bytes / 1024 / 1024,
        help="largest request body, in MiB (default: %(default)s)",
    )
    serve.add_argument(
        "--max-megapixels",
        type=float,
        default=DEFAULTS.max_pixels / 1_000_000,
        help="largest image, in millions of pixels, checked before decoding (default: %(default)s)",
    )
    serve.add_argument(
        "--max-images", type=int, default=DEFAULTS.max_images, help="images per request (default: %(default)s)"
    )
    serve.add_argument(
        "--batch-window-ms",
        type=float,
        default=DEFAULTS.batch_window_ms,
        help="how long a request waits for others to share a model call (default: %(default)s)",
    )
    serve.add_argument(
        "--max-batch", type=int, default=DEFAULTS.max_batch, help="most images in one model call (default: %(default)s)"
    )
    serve.add_argument(
        "--max-queue",
        type=positive_int,
        default=DEFAULTS.max_queue,
        help="images a worker process holds waiting for decoding, and again for the model; a request past it is "
        "refused at once with 503 and Retry-After (default: %(default)s)",
    )
    serve.add_argument(
        "--deadline-ms",
        type=float,
        default=DEFAULTS.deadline_ms,
        help="a request that has not reached the model this long after its body arrived is refused with 503, "
        "not answered late (default: %(default)s)",
    )
    serve.add_argument(
        "--header-timeout-s",
        type=float,
        default=DEFAULTS.header_timeout_s,
        help="time a client has to send a request's headers; then 408 and the connection is closed "
        "(default: %(default)s)",
    )
    serve.add_argument(
        "--body-timeout-s",
        type=float,
        default=DEFAULTS.body_timeout_s,
        help="time a client has to send a request's body once its headers are in; then 408 (default: %(default)s)",
    )
    serve.add_argument(
        "--max-connections",
        type=positive_int,
        default=DEFAULTS.max_connections,
        help="open connections (or requests in progress) per worker process past which a request is answered "
        "503 unread (default: %(default)s)",
    )
    serve.add_argument(
        "--keep-alive-s",
        type=positive_int,
        default=DEFAULTS.keep_alive_s,
        help="an idle keep-alive connection is closed after this many seconds (default: %(default)s)",
    )
    serve.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (default: %(default)s)",
    )
    serve.set_defaults(func=cmd_serve)
