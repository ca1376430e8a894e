"""Where a caption set's splits and images are, found from one path: a folder or a caption file.

The layouts read, each as it is unpacked (a file's format comes from its content, never from its name):

- a COCO captions folder, as `caption scenes` writes it: annotations/captions_{train,val[,test]}.json + images/;
- a COCO 2014 (or 2017) tree: annotations/captions_train2014.json + train2014/, captions_val2014.json + val2014/;
- one COCO captions file (annotations/captions_train2014.json): its name gives its split, the files beside it
  with the same ending (captions_val2014.json) the other splits;
- a Karpathy split file (dataset_coco.json, dataset_flickr8k.json, dataset_flickr30k.json), or a folder that
  holds one: every split in one file, restval in train.

Images are looked for beside the caption file (`--image-dir` names their folder otherwise): the folder that holds
the first listed image is the one used, so a set unpacked as it comes needs no renaming."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from imcaption.captioning.coco import (
    CaptionedImage,
    CaptionEntry,
    CaptionFormatError,
    attach_images,
    coco_entries,
    is_coco,
    load_json,
)
from imcaption.captioning.karpathy import first_captions, is_karpathy, karpathy_set

SPLITS = ("train", "val", "test")
# captions_train.json (what `caption scenes` writes), captions_train2014.json, captions_val2017.json, ...
COCO_FILE = re.compile(r"^captions_(?P<split>train|val|test)(?P<year>\d*)\.json$")


@dataclass(frozen=True)
class CaptionData:
    """A caption set: what was found, and a reader for each of its splits (each split read when asked for)."""

    layout: str  # the layout found, as the commands report it
    description: str  # the layout and the files it is read from
    root: Path  # the set's folder; feature caches go under it
    files: dict[str, Path]  # split -> the file its captions come from
    readers: dict[str, Callable[[int], list[CaptionedImage]]] = field(repr=False)

    def read(self, split: str, limit_captions: int = 0) -> list[CaptionedImage]:
        """The split's captioned images; limit_captions keeps its first N captions (0: all)."""
        if split not in self.readers:
            raise FileNotFoundError(f"{self.description}: no {split} split (it has {', '.join(self.readers)})")
        return self.readers[split](limit_captions)

    def held_out(self, split: str | None = None) -> str:
        """The split to score a trained captioner on: `split` if given; by default test (never used for any
        choice) where the set has one, else val."""
        return split or ("test" if "test" in self.readers else "val")


def open_caption_data(path: str | Path, image_dir: str | Path | None = None) -> CaptionData:
    """The caption set at `path` (a folder or a caption file); `image_dir`: the images' folder, where it is not
    beside the caption file."""
    path = Path(path)
    if path.is_dir():
        path = caption_file_in(path)
    elif not path.exists():
        raise FileNotFoundError(f"caption data not found: {path}")
    data = load_json(path)
    images = Path(image_dir) if image_dir else None
    if is_karpathy(data):
        return _karpathy_data(path, data, images)
    if is_coco(data):
        # Parsed again when a split is read: keeping COCO's train file parsed for a whole run would hold more
        # memory than the second parse takes time.
        return _coco_data(path, images)
    raise CaptionFormatError(
        f'{path}: neither COCO captions (an object with "images" and "annotations" lists) nor a Karpathy split '
        'file (an object with "images" whose entries have "sentences", "split" and "filename")'
    )


def caption_file_in(folder: Path) -> Path:
    """The file a folder's set is read from: its training captions (annotations/captions_train*.json) or its one
    Karpathy split file (dataset_*.json, in the folder or in annotations/)."""
    annotations = folder / "annotations"
    found = [p for p in sorted(annotations.glob("captions_train*.json")) if COCO_FILE.match(p.name)]
    found += sorted(folder.glob("dataset_*.json")) + sorted(annotations.glob("dataset_*.json"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise FileNotFoundError(
            f"{folder}: no caption files; looked for annotations/captions_train.json (with captions_val.json), "
            "annotations/captions_train2014.json (a COCO 2014 tree) and dataset_*.json (Karpathy splits)"
        )
    names = ", ".join(str(p.relative_to(folder)) for p in found)
    raise CaptionFormatError(f"{folder}: several caption sets ({names}); point at the file to use")


def _root(file: Path) -> Path:
    """The set's folder: above annotations/ where the file is in one, as COCO unpacks."""
    return file.parent.parent if file.parent.name == "annotations" else file.parent


def _coco_data(file: Path, image_dir: Path | None) -> CaptionData:
    match = COCO_FILE.match(file.name)
    if match is None:
        raise CaptionFormatError(
            f"{file}: COCO captions whose name does not say their split; name the files as COCO does, "
            "captions_train.json and captions_val.json (or captions_train2014.json and captions_val2014.json)"
        )
    year = match["year"]
    files = {s: file.with_name(f"captions_{s}{year}.json") for s in SPLITS}
    files = {split: path for split, path in files.items() if path == file or path.is_file()}
    layout = f"COCO {year} captions JSON" if year else "COCO captions JSON"
    root = _root(file)
    readers = {split: partial(_read_coco, path, _coco_folders(root, path, split + year, image_dir))
               for split, path in files.items()}  # fmt: skip
    description = f"{layout} ({', '.join(f'{split}: {path}' for split, path in files.items())})"
    return CaptionData(layout, description, root, files, readers)


def _coco_folders(root: Path, file: Path, name: str, image_dir: Path | None) -> list[Path]:
    """Where a COCO split's images may be: images/ (a captions folder), train2014/ (the COCO tree), ..."""
    if image_dir:
        return [image_dir / name, image_dir]
    return _unique([root / "images", root / name, root / "images" / name, file.parent / name])


def _read_coco(file: Path, folders: list[Path], limit_captions: int) -> list[CaptionedImage]:
    entries = coco_entries(load_json(file), file, limit_captions)
    return attach_images(entries, image_folder(entries, folders, file), file)


def _karpathy_data(file: Path, data: dict, image_dir: Path | None) -> CaptionData:
    found = karpathy_set(data, file)
    splits = {split: entries for split, entries in found.splits.items() if entries}
    listed = [entry for entries in splits.values() for entry in entries]
    folder = image_folder(listed, _karpathy_folders(file, image_dir), file)
    readers = {split: partial(_read_karpathy, entries, folder, file) for split, entries in splits.items()}
    counts = ", ".join(f"{len(entries):,} {split}" for split, entries in splits.items())
    layout = f"Karpathy split JSON ({found.name})"
    description = f"{layout} ({file}; images in {folder}): {counts} images, restval in train"
    return CaptionData(layout, description, _root(file), dict.fromkeys(splits, file), readers)


def _karpathy_folders(file: Path, image_dir: Path | None) -> list[Path]:
    """The folders a Karpathy file's images may be under: beside it and one level up, and their subfolders
    (Flicker8k_Dataset/, flickr30k-images/ or, for COCO, the folder above train2014/ and val2014/)."""
    bases = [image_dir] if image_dir else _unique([file.parent, file.parent.parent])
    folders = []
    for base in bases:
        folders.append(base)
        if base.is_dir():
            folders += sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    return _unique(folders)


def _read_karpathy(entries: list[CaptionEntry], folder: Path, file: Path, limit_captions: int) -> list[CaptionedImage]:
    return attach_images(first_captions(entries, limit_captions), folder, file)


def image_folder(entries: list[CaptionEntry], folders: list[Path], source: Path) -> Path:
    """The first of `folders` that holds the first listed image (the images are then checked one by one)."""
    if not entries:
        return folders[0]
    first = entries[0]
    for folder in folders:
        if (folder / first.file).is_file():
            return folder
    looked = ", ".join(str(folder) for folder in folders)
    raise CaptionFormatError(f"{source}: {first.where}: image {first.image_id} is missing: {first.file} is in "
                             f"none of {looked} (--image-dir names the images' folder)")  # fmt: skip


def _unique(paths: list[Path]) -> list[Path]:
    return list(dict.fromkeys(paths))
