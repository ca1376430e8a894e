"""COCO-format caption files: `captions_*.json` ({"images": [...], "annotations": [...]}) and an image folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class CocoFormatError(ValueError):
    """A caption file that cannot be used; the message names the file and the offending entry."""


@dataclass(frozen=True)
class CaptionedImage:
    image_id: int
    path: Path
    captions: tuple[str, ...]


def read_coco_captions(
    captions_file: str | Path, image_dir: str | Path, limit_captions: int = 0, check_files: bool = True
) -> list[CaptionedImage]:
    """Images with their captions, in the order the images are listed.

    limit_captions keeps the first N annotations (the tutorial trains on the first 30,000)."""
    captions_file, image_dir = Path(captions_file), Path(image_dir)
    try:
        data = json.loads(captions_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"caption file not found: {captions_file}") from None
    except json.JSONDecodeError as err:
        raise CocoFormatError(f"{captions_file}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise CocoFormatError(f'{captions_file}: expected an object with "images" and "annotations" lists')
    if not isinstance(data.get("annotations"), list):
        raise CocoFormatError(f'{captions_file}: expected an object with "images" and "annotations" lists')
    files: dict[int, str] = {}
    for position, image in enumerate(data["images"]):
        try:
            files[int(image["id"])] = str(image["file_name"])
        except (KeyError, TypeError, ValueError):
            raise CocoFormatError(f'{captions_file}: images[{position}] needs "id" and "file_name"') from None
    annotations = data["annotations"][:limit_captions] if limit_captions else data["annotations"]
    captions: dict[int, list[str]] = {}
    for position, annotation in enumerate(annotations):
        try:
            image_id, caption = int(annotation["image_id"]), str(annotation["caption"])
        except (KeyError, TypeError, ValueError):
            raise CocoFormatError(f'{captions_file}: annotations[{position}] needs "image_id" and "caption"') from None
        if image_id not in files:
            raise CocoFormatError(
                f"{captions_file}: annotations[{position}] is a caption for image {image_id}, "
                "which is not among the images"
            )
        captions.setdefault(image_id, []).append(caption.strip())
    result = []
    for image_id, file_name in files.items():
        if image_id not in captions:
            continue
        path = image_dir / file_name
        if check_files and not path.is_file():
            raise CocoFormatError(f"{captions_file}: image {image_id} is missing: {path}")
        result.append(CaptionedImage(image_id, path, tuple(captions[image_id])))
    return result


def split_images(
    images: list[CaptionedImage], val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[CaptionedImage], list[CaptionedImage]]:
    """A seeded split by image, so no image has captions on both sides."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(images))
    cut = len(images) - max(1, round(len(images) * val_fraction))
    return [images[i] for i in sorted(order[:cut])], [images[i] for i in sorted(order[cut:])]
