"""COCO-format caption files: `captions_*.json` ({"images": [...], "annotations": [...]}) and an image folder;
and what every caption file reader shares: the parsed JSON, the checked caption text, the images attached.

Every refusal is one CaptionFormatError line naming the file and the entry, e.g.
`captions_train.json: annotations[4]: "caption" missing`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imcaption.text.word_tokenizer import normalize


class CaptionFormatError(ValueError):
    """A caption file that cannot be used; the message names the file and the offending entry."""


CocoFormatError = CaptionFormatError  # its name from before other layouts were read; still importable


@dataclass(frozen=True)
class CaptionedImage:
    image_id: int
    path: Path
    captions: tuple[str, ...]


@dataclass(frozen=True)
class CaptionEntry:
    """An image of a caption file before its folder is known: its file name relative to the image folder,
    and `where` it is listed (`images[3]`), for messages."""

    image_id: int
    file: str
    captions: tuple[str, ...]
    where: str


def load_json(path: Path) -> Any:
    """The parsed file. A missing file is FileNotFoundError; bytes that are not UTF-8 and text that is not JSON
    are a CaptionFormatError saying where."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"caption file not found: {path}") from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as some editors write, is not an error
    except UnicodeDecodeError as err:
        byte = f"0x{raw[err.start]:02x}"
        raise CaptionFormatError(f"{path}: not UTF-8 text (byte {byte} at offset {err.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CaptionFormatError(f"{path}: not valid JSON ({err})") from None


def caption_text(value: object, where: str) -> str:
    """A caption as written, stripped; refused when it is not text or holds no word (it would train on
    <start> <end> alone, and an empty reference makes every caption metric undefined)."""
    if not isinstance(value, str):
        raise CaptionFormatError(f"{where}: the caption is not text: {value!r}")
    if not normalize(value):
        raise CaptionFormatError(f"{where}: empty caption {value!r}")
    return value.strip()


def entry_field(entry: object, key: str, where: str) -> Any:
    """entry[key], refused by name when the entry is not an object or lacks the key."""
    if not isinstance(entry, dict):
        raise CaptionFormatError(f"{where}: expected an object, got {type(entry).__name__}")
    if key not in entry:
        raise CaptionFormatError(f'{where}: "{key}" missing')
    return entry[key]


def integer(value: object, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise CaptionFormatError(f'{where}: "{name}" is not an integer: {value!r}')
    try:
        return int(value)
    except ValueError:
        raise CaptionFormatError(f'{where}: "{name}" is not an integer: {value!r}') from None


def is_coco(data: object) -> bool:
    """COCO captions files carry an "annotations" list beside "images"."""
    return isinstance(data, dict) and isinstance(data.get("images"), list) and isinstance(data.get("annotations"), list)


def coco_entries(data: object, source: Path, limit_captions: int = 0) -> list[CaptionEntry]:
    """The captioned images of a parsed COCO captions file, in the order the images are listed.

    limit_captions keeps the first N annotations (the tutorial trains on the first 30,000)."""
    if not is_coco(data):
        raise CaptionFormatError(f'{source}: expected an object with "images" and "annotations" lists')
    files = _coco_files(data["images"], source)
    annotations = data["annotations"][:limit_captions] if limit_captions else data["annotations"]
    captions: dict[int, list[str]] = {}
    for position, annotation in enumerate(annotations):
        where = f"{source}: annotations[{position}]"
        image_id = integer(entry_field(annotation, "image_id", where), "image_id", where)
        text = caption_text(entry_field(annotation, "caption", where), where)
        if image_id not in files:
            raise CaptionFormatError(f"{where}: a caption for image {image_id}, which is not among the images")
        captions.setdefault(image_id, []).append(text)
    return [
        CaptionEntry(image_id, name, tuple(captions[image_id]), f"images[{position}]")
        for image_id, (position, name) in files.items()
        if image_id in captions
    ]


def _coco_files(images: list, source: Path) -> dict[int, tuple[int, str]]:
    """Image id -> (position in the list, file name)."""
    files: dict[int, tuple[int, str]] = {}
    for position, image in enumerate(images):
        where = f"{source}: images[{position}]"
        image_id = integer(entry_field(image, "id", where), "id", where)
        name = entry_field(image, "file_name", where)
        if not isinstance(name, str) or not name:
            raise CaptionFormatError(f'{where}: "file_name" is not a file name: {name!r}')
        if image_id in files:
            first = files[image_id][0]
            raise CaptionFormatError(f"{where}: image id {image_id} is listed twice (first at images[{first}])")
        files[image_id] = (position, name)
    return files


def attach_images(
    entries: Iterable[CaptionEntry], image_dir: Path, source: Path, check_files: bool = True
) -> list[CaptionedImage]:
    """The entries with their image paths under `image_dir`; a missing image is refused, naming its entry."""
    result = []
    for entry in entries:
        path = image_dir / entry.file
        if check_files and not path.is_file():
            raise CaptionFormatError(f"{source}: {entry.where}: image {entry.image_id} is missing: {path}")
        result.append(CaptionedImage(entry.image_id, path, entry.captions))
    return result


def read_coco_captions(
    captions_file: str | Path, image_dir: str | Path, limit_captions: int = 0, check_files: bool = True
) -> list[CaptionedImage]:
    """Images with their captions, in the order the images are listed.

    limit_captions keeps the first N annotations (the tutorial trains on the first 30,000)."""
    captions_file = Path(captions_file)
    entries = coco_entries(load_json(captions_file), captions_file, limit_captions)
    return attach_images(entries, Path(image_dir), captions_file, check_files)


def split_images(
    images: list[CaptionedImage], val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[CaptionedImage], list[CaptionedImage]]:
    """A seeded split by image, so no image has captions on both sides."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(images))
    cut = len(images) - max(1, round(len(images) * val_fraction))
    return [images[i] for i in sorted(order[:cut])], [images[i] for i in sorted(order[cut:])]
