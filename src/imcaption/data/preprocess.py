"""The one image transform shared by the cache, training and `imcaption read`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


@dataclass(frozen=True)
class ImageSize:
    height: int
    width: int

    def __post_init__(self) -> None:
        if self.height < 8 or self.width < 8:
            raise ValueError(f"image size must be at least 8x8, got {self.height}x{self.width}")

    @property
    def tag(self) -> str:
        return f"{self.height}x{self.width}"


class ImageReadError(ValueError):
    """An image file that cannot be decoded; the message names it."""


def load_image(path: str | Path) -> Image.Image:
    """Decode fully (so truncated files fail here, not later) and convert to RGB.

    Transparent pixels are composited on white, the captcha background."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                rgba = image.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                return Image.alpha_composite(background, rgba).convert("RGB")
            return image.convert("RGB")
    except FileNotFoundError:
        raise ImageReadError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageReadError(f"cannot read image {path}: {err}") from None


def to_model_input(image: Image.Image, size: ImageSize) -> np.ndarray:
    """(H, W, 3) uint8. A box filter averages whole source pixels, which also thins the 1-px speckle."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (size.width, size.height):
        image = image.resize((size.width, size.height), Image.Resampling.BOX)
    return np.asarray(image, dtype=np.uint8)
