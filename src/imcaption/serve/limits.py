"""What the service accepts and how much it takes on; every limit is a command-line option of `imcaption serve`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceLimits:
    # A 600x320 captcha PNG is ~100-200 KB; 8 MB leaves room for a few photos per request.
    max_body_bytes: int = 8 * 1024 * 1024
    # Checked from the image header before decoding: a 10 KB file can claim 50,000 x 50,000 pixels.
    max_pixels: int = 12_000_000
    max_images: int = 32
    # Micro-batching: wait at most this long for more requests, and never batch more than this many images.
    batch_window_ms: float = 4.0
    max_batch: int = 64
    # Images a worker process holds waiting for decoding, and again waiting for the model; a request that would
    # go past either is refused at once (503). 256 is sized from the images/s of one worker on the 2-core
    # machines of bench/results/serve*.json, so that a full queue drains well within the deadline.
    max_queue: int = 256
    # From the moment the request's body is in: a request not yet in a model call by then is answered 503, not
    # late. Far above the two-core p99 latency of bench/results/serve*.json; past a few seconds a caller has given
    # up or retried anyway.
    deadline_ms: float = 3000.0
    # A client has this long to send a request's headers, and this long for its body (8 MB at 1.1 Mbit/s); one
    # that dribbles bytes would otherwise hold a connection, and the memory of its body, for ever.
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    # uvicorn's limit_concurrency, per worker process: past this many connections (or requests in progress)
    # new requests are answered 503 before any is read. Bounds the bodies in memory as well as the sockets.
    max_connections: int = 512
    # An idle keep-alive connection is closed after this long (uvicorn's own default, made explicit).
    keep_alive_s: int = 5

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_pixels", "max_images", "max_batch", "max_queue", "max_connections"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("deadline_ms", "header_timeout_s", "body_timeout_s", "keep_alive_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be above 0, got {getattr(self, name)}")
        if self.batch_window_ms < 0:
            raise ValueError(f"batch_window_ms must be >= 0, got {self.batch_window_ms}")
        if self.max_queue < self.max_images:  # else a full-sized request could never be queued
            raise ValueError(f"max_queue ({self.max_queue}) must be at least max_images ({self.max_images})")
