"""The one image transform shared by the cache, training, reading and captioning; and batching for the models."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    import torch

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


# The one list of file formats decoded anywhere (CLI, Python API, caches, service): raster formats only. Pillow would
# also open EPS and PS through Ghostscript, PDF, ICO and a dozen rarer formats nobody feeds a captcha reader.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
FORMATS_READ = "PNG, JPEG, GIF, BMP, WebP or TIFF"

# Well above a 600x320 captcha and a 24 MP camera photo; far below what would exhaust memory when decoded.
MAX_PIXELS = 40_000_000
EXIF_ORIENTATION = 0x0112


class ImageReadError(ValueError):
    """An image file that cannot be decoded; the message names it."""


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB, with transparent pixels composited on white (the captcha background); an RGB image as it is, not a
    copy (the service decodes every upload through here)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def eight_bit(image: Image.Image) -> Image.Image:
    """16- and 32-bit integer or float images scaled to 8 bits (Pillow's own conversion would clip them)."""
    if image.mode not in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return image
    values = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
    return Image.fromarray(np.clip(values * (255.0 / top), 0, 255).round().astype(np.uint8), mode="L")


def upright(image: Image.Image) -> Image.Image:
    """The first frame, turned as its EXIF orientation says (a phone photo stored sideways), in 8 bits, RGB;
    `image` itself where it is all of that already."""
    if image.getexif().get(EXIF_ORIENTATION, 1) != 1:
        image = ImageOps.exif_transpose(image)
    return to_rgb(eight_bit(image))


def check_pixel_count(image: Image.Image, name: str, max_pixels: int) -> None:
    """Refuse an image over `max_pixels` from its header alone, before any pixel is decoded."""
    width, height = image.size
    if width * height > max_pixels:
        raise ImageReadError(
            f"{name} is {width}x{height} ({width * height / 1e6:.1f} MP), over the limit of {max_pixels / 1e6:g} MP"
        )


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode one image file as upright RGB, or raise ImageReadError naming the file and the reason.

    The pixel count is checked from the header before anything is decoded, so a small file that claims to be
    huge costs nothing. Decoding is complete, so a truncated file fails here, not later."""
    try:
        with Image.open(path, formats=IMAGE_FORMATS) as image:
            check_pixel_count(image, f"image {path}", max_pixels)
            image.load()
            rgb = upright(image)
            return rgb.copy() if rgb is image else rgb  # leaving `with` closes `image`
    except FileNotFoundError:
        raise ImageReadError(f"image not found: {path}") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path} is a directory, not an image") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"cannot read image {path}: not a {FORMATS_READ} image") from None
    # DecompressionBombError is not an OSError; ValueError, EOFError and SyntaxError come from damaged files.
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageReadError(f"cannot read image {path}: {err}") from None


def whole_png(data: bytes) -> bool:
    """Whether every chunk of a PNG is complete with a matching CRC, up to a final IEND. libpng (through
    imagecodecs) leaks a few hundred KB each time it fails on a file, so truncated or damaged files must never
    reach it: a service fed bad uploads grew by 1.7 MB/s per worker that way (bench/results/soak_epyc.json)."""
    offset = 8
    while offset + 12 <= len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        end = offset + 12 + length
        if end > len(data):
            return False
        body = data[offset + 4 : offset + 8 + length]
        if zlib.crc32(body) != int.from_bytes(data[offset + 8 + length : end], "big"):
            return False
        if body[:4] == b"IEND":
            return end == len(data)
        offset = end
    return False


def png_pixels(image: Image.Image, data: bytes) -> np.ndarray | None:
    """The (H, W, 3) uint8 pixels of `image`, an opened (not yet loaded) 8-bit RGB PNG made of `data`, decoded by
    libpng through imagecodecs: faster than Pillow's decoder, and it lets go of the GIL, so other threads run
    meanwhile. None where Pillow's path is needed, for the same result: another mode or bit depth,
    transparency, an eXIf chunk (an orientation to apply), or a file libpng refuses."""
    if image.format != "PNG" or image.mode != "RGB" or "transparency" in image.info or b"eXIf" in data:
        return None
    if not whole_png(data):
        return None
    # imagecodecs comes with the 'serve' extra, torch with 'train' (as_batch): reading a file needs only Pillow.
    import imagecodecs

    try:
        pixels = imagecodecs.png_decode(data)
    except imagecodecs.PngError:
        return None
    width, height = image.size
    return pixels if pixels.dtype == np.uint8 and pixels.shape == (height, width, 3) else None


def to_model_input(image: Image.Image | np.ndarray, size: ImageSize) -> np.ndarray:
    """(H, W, 3) uint8. A box filter averages whole source pixels, which also thins the 1-px speckle."""
    if isinstance(image, np.ndarray):
        if image.shape[:2] == (size.height, size.width):
            return image
        image = Image.fromarray(image)
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
        if item.format is not None and item.format not in IMAGE_FORMATS:
            raise ImageReadError(f"cannot read an image in {item.format} format; images are read as {FORMATS_READ}")
        check_pixel_count(item, "image", MAX_PIXELS)
        return upright(item)
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
    import torch  # see png_pixels

    return torch.from_numpy(images).permute(0, 3, 1, 2).float()
