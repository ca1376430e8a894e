"""What the service accepts; every limit is a command-line option of `imcaption serve`."""

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

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_pixels", "max_images", "max_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_window_ms < 0:
            raise ValueError(f"batch_window_ms must be >= 0, got {self.batch_window_ms}")
