"""The one image transform shared by the cache, training, reading and captioning; and batching for the models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

# What the Python API accepts as one image: a file path, a PIL image, or an (H, W, 3) / (H, W) uint8 array.
ImageLike = str | Path | Image.Image | np.ndarray


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


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with transparent pixels composited on white (the captcha background)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def load_image(path: str | Path) -> Image.Image:
    """Decode fully (so truncated files fail here, not later) and convert to RGB."""
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
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


def as_image(item: ImageLike) -> Image.Image:
    """One API input as an RGB PIL image."""
    if isinstance(item, (str, Path)):
        return load_image(item)
    if isinstance(item, Image.Image):
        return to_rgb(item)
    if isinstance(item, np.ndarray):
        if item.dtype != np.uint8 or item.ndim not in (2, 3) or (item.ndim == 3 and item.shape[2] not in (3, 4)):
            raise ValueError(f"an image array must be uint8 (H, W), (H, W, 3) or (H, W, 4); got {item.dtype} "
                             f"{item.shape}")  # fmt: skip
        return to_rgb(Image.fromarray(item))
    raise TypeError(f"cannot read a {type(item).__name__} as an image; pass a path, a PIL image or a uint8 array")


def as_image_list(images: ImageLike | Sequence[ImageLike]) -> tuple[list[ImageLike], bool]:
    """The inputs as a list, and whether a single image was given (so the caller can answer with one)."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return list(images), False
    if isinstance(images, (str, Path, Image.Image, np.ndarray)):
        return [images], True
    return list(images), False


def as_batch(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float in channels-last memory, the fast layout for CPU convs."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float()
