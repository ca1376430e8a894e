"""Karpathy split files (`dataset_coco.json`, `dataset_flickr8k.json`, `dataset_flickr30k.json`): every image of a
set with its captions and its split, in one file.

Each entry of the top-level `images` list has `filename`, `filepath` (COCO only: its folder, e.g. `val2014`),
`split` (train, val, test or restval), `sentences` (each with `raw`, the caption as written, and `tokens`) and
`cocoid` (COCO) or `imgid`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imcaption.captioning.coco import CaptionEntry, CaptionFormatError, caption_text, entry_field, integer

# restval: COCO val2014 images outside Karpathy's 5,000 val and 5,000 test images. The papers that report on
# this split train on them, so they join train.
SPLIT_OF = {"train": "train", "restval": "train", "val": "val", "test": "test"}
KARPATHY_KEYS = ("sentences", "filename", "split")  # COCO captions files say "file_name" and have no split


@dataclass(frozen=True)
class KarpathySet:
    """A parsed Karpathy file: its dataset's name and its entries by split (restval in train)."""

    name: str
    splits: dict[str, list[CaptionEntry]]


def is_karpathy(data: object) -> bool:
    """Karpathy files name their dataset and list images with sentences, a split and a filename (a file whose
    first entry has any of these is read as one, so that a missing field is reported as such)."""
    if not isinstance(data, dict) or "annotations" in data or not isinstance(data.get("images"), list):
        return False
    first = data["images"][0] if data["images"] else None
    return "dataset" in data or (isinstance(first, dict) and any(key in first for key in KARPATHY_KEYS))


def karpathy_set(data: dict, source: Path) -> KarpathySet:
    """Every image of the parsed file `source` with its captions, by split, in the order listed."""
    splits: dict[str, list[CaptionEntry]] = {"train": [], "val": [], "test": []}
    for position, image in enumerate(data["images"]):
        split, entry = _entry(image, position, source)
        splits[split].append(entry)
    name = data.get("dataset")
    return KarpathySet(name if isinstance(name, str) and name else source.stem, splits)


def _entry(image: object, position: int, source: Path) -> tuple[str, CaptionEntry]:
    where = f"{source}: images[{position}]"
    if not isinstance(image, dict):
        raise CaptionFormatError(f"{where}: expected an object, got {type(image).__name__}")
    sentences = entry_field(image, "sentences", where)
    split = entry_field(image, "split", where)
    filename = entry_field(image, "filename", where)
    if split not in SPLIT_OF:
        raise CaptionFormatError(f'{where}: "split" is {split!r}; expected train, val, test or restval')
    folder = image.get("filepath", "")
    if not isinstance(filename, str) or not filename or not isinstance(folder, str):
        raise CaptionFormatError(f'{where}: "filepath" and "filename" must be text: {folder!r}, {filename!r}')
    if not isinstance(sentences, list) or not sentences:
        raise CaptionFormatError(f'{where}: "sentences" is empty or not a list')
    captions = tuple(_sentence(sentence, f"{where}: sentences[{n}]") for n, sentence in enumerate(sentences))
    key = "cocoid" if "cocoid" in image else "imgid"
    image_id = integer(image.get(key, position), key, where)
    file = f"{folder}/{filename}" if folder else filename
    return SPLIT_OF[split], CaptionEntry(image_id, file, captions, f"images[{position}]")


def _sentence(sentence: object, where: str) -> str:
    """The caption as written (`raw`, the same text a COCO captions file holds); `tokens` joined where a file
    has no `raw`."""
    if not isinstance(sentence, dict):
        raise CaptionFormatError(f"{where}: expected an object, got {type(sentence).__name__}")
    if "raw" in sentence:
        return caption_text(sentence["raw"], where)
    tokens = sentence.get("tokens")
    if tokens is None:
        raise CaptionFormatError(f'{where}: neither "raw" nor "tokens"')
    if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
        raise CaptionFormatError(f'{where}: "tokens" is not a list of words: {tokens!r}')
    return caption_text(" ".join(tokens), where)


def first_captions(entries: list[CaptionEntry], count: int) -> list[CaptionEntry]:
    """The first `count` captions in file order (0: all of them); images left without one drop out."""
    if not count:
        return entries
    kept: list[CaptionEntry] = []
    for entry in entries:
        if count <= 0:
            break
        kept.append(CaptionEntry(entry.image_id, entry.file, entry.captions[:count], entry.where))
        count -= len(entry.captions)
    return kept
