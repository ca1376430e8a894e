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
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (default: %(default)s)",
    )
    serve.set_defaults(func=cmd_serve)
