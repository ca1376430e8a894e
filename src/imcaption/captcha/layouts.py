"""Dataset layouts besides words_captcha: labels in the file names, or a folder of images with a label file.

Both give a list of (file, label) pairs; the split comes from a split file or is drawn with a fixed seed, so
training, evaluation and prediction see the same split. Labels are text as written: a CSV reader here never
turns `null` or `0012` into anything else."""

from __future__ import annotations

import csv
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from imcaption.engine.config import option
from imcaption.images import IMAGE_FORMATS, ImageSize

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
LABEL_FILE_NAMES = ("labels.csv", "labels.tsv", "labels.txt")
MAX_LABEL_LENGTH = 16
CASES = ("sensitive", "insensitive")
# File-name labels: `2b8x7.png`, `2b8x7_0013.png` (a counter or a hex hash after the label), `0013_2b8x7.png`.
FILE_NAME_PATTERNS = (
    re.compile(r"^(?P<label>[^_]+)$"),
    re.compile(r"^(?P<label>[^_]+)_(?:\d+|[0-9a-fA-F]{8,})$"),
    re.compile(r"^\d+_(?P<label>[^_]+)$"),
)
SPLIT_SEED = 0  # the split is a property of the dataset, not of a training run: one for every seed


class LayoutError(ValueError):
    """A dataset folder or label file that cannot be used as it is; the message names the file and entry."""


@dataclass(frozen=True)
class DatasetLayout:
    """How to find the labels and the split of a dataset that is not in the words_captcha layout."""

    label_file: str = option(
        "", "a label file (file<TAB or comma>label lines, header optional); default: DATA_DIR/labels.csv, "
        "labels.tsv or labels.txt if there is one, else labels in the file names"
    )  # fmt: skip
    label_pattern: str = option(
        "", "labels in file names: a regular expression over the name without its extension whose group "
        "'label' (or first group) is the label; default: LABEL, LABEL_0013 or 0013_LABEL"
    )  # fmt: skip
    val_fraction: float = option(0.1, "share of the labeled images drawn for validation (without a split file)")
    test_fraction: float = option(0.1, "share of the labeled images drawn for the test split (0: none)")
    split_file: str = option("", "file<TAB or comma>train|val|test lines: the split as given instead of drawn")
    case: str = option("sensitive", "insensitive: fold labels to lower case (for sites that ignore case)",
                       choices=CASES)  # fmt: skip

    def __post_init__(self) -> None:
        if not 0 < self.val_fraction < 1 or not 0 <= self.test_fraction < 1:
            raise ValueError(f"--val-fraction must be in (0, 1) and --test-fraction in [0, 1); got "
                             f"{self.val_fraction} and {self.test_fraction}")  # fmt: skip
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("--val-fraction and --test-fraction leave no images to train on")
        if self.label_pattern:
            try:
                re.compile(self.label_pattern)
            except re.error as err:
                raise ValueError(f"--label-pattern {self.label_pattern!r} is not a regular expression: {err}") from None


@dataclass(frozen=True)
class LabeledFiles:
    """What a layout reader found: files (relative to the dataset folder) with their labels, and how."""

    files: list[str]
    labels: list[str]
    how: str


def find_labels(root: Path, layout: DatasetLayout) -> LabeledFiles:
    """The labeled images of `root`: from the label file if there is one, else from the file names."""
    label_file = Path(layout.label_file) if layout.label_file else _default_label_file(root)
    found = read_label_file(label_file, root) if label_file else read_file_name_labels(root, layout.label_pattern)
    labels = [label.lower() for label in found.labels] if layout.case == "insensitive" else found.labels
    return LabeledFiles(found.files, labels, found.how)


def _default_label_file(root: Path) -> Path | None:
    return next((root / name for name in LABEL_FILE_NAMES if (root / name).is_file()), None)


def check_label(label: str, where: str) -> str:
    if not label:
        raise LayoutError(f"{where}: the label is empty")
    if len(label) > MAX_LABEL_LENGTH:
        raise LayoutError(f"{where}: label {label!r} has {len(label)} characters; at most {MAX_LABEL_LENGTH} are read")
    if not label.isprintable():
        raise LayoutError(f"{where}: label {label!r} holds a character that is not printable")
    return label


def read_file_name_labels(root: Path, pattern: str = "") -> LabeledFiles:
    """Every image file directly in `root`, its label taken from its name. A name that gives no label is an
    error naming it (nothing is skipped silently)."""
    names = sorted(p.name for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not names:
        raise LayoutError(
            f"{root}: no labels found: no spec_train_val.txt (words_captcha), no label file "
            f"({', '.join(LABEL_FILE_NAMES)} or --label-file) and no image files ({', '.join(IMAGE_SUFFIXES)})"
        )
    patterns = (re.compile(pattern),) if pattern else FILE_NAME_PATTERNS
    labels = []
    for name in names:
        stem = name.rsplit(".", 1)[0]
        label = next((_label_of(match) for p in patterns if (match := p.search(stem))), None)
        if label is None:
            hint = "--label-pattern does not match it" if pattern else "use --label-pattern for this naming scheme"
            raise LayoutError(f"{root / name}: no label in the file name ({hint})")
        labels.append(check_label(label, str(root / name)))
    how = f"labels in file names ({'--label-pattern ' + pattern if pattern else 'LABEL, LABEL_N or N_LABEL'})"
    return LabeledFiles(names, labels, how)


def _label_of(match: re.Match) -> str:
    return match.group("label") if "label" in match.re.groupindex else match.group(1 if match.re.groups else 0)


def read_label_file(path: Path, root: Path) -> LabeledFiles:
    """`file<TAB or comma>label` lines (the delimiter from the first line; a first line whose file is not in the
    folder is a header). Files are relative to `root`; a missing image or a file listed twice is an error."""
    rows = _delimited_rows(path)
    first = rows[0][1][0].strip() if rows else ""
    if first and not (root / first).is_file() and not first.lower().endswith(IMAGE_SUFFIXES):
        rows = rows[1:]  # a header such as `file,label`
    files, labels, seen = [], [], {}
    for line_no, fields in rows:
        where = f"{path}:{line_no}"
        if len(fields) != 2:
            raise LayoutError(f"{where}: expected two fields, file and label; got {len(fields)}")
        name, label = fields[0].strip(), fields[1]
        if name in seen:
            raise LayoutError(f"{where}: {name} is listed twice (first on line {seen[name]})")
        if not (root / name).is_file():
            raise LayoutError(f"{where}: image {root / name} not found")
        seen[name] = line_no
        files.append(name)
        labels.append(check_label(label, where))
    if not files:
        raise LayoutError(f"{path}: no labels found")
    return LabeledFiles(files, labels, f"a label file ({path})")


def _delimited_rows(path: Path) -> list[tuple[int, list[str]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LayoutError(f"label file not found: {path}") from None
    except UnicodeDecodeError as err:
        raise LayoutError(f"{path}: not UTF-8 text ({err})") from None
    lines = text.splitlines()
    delimiter = "\t" if lines and "\t" in lines[0] else ","
    reader = csv.reader(lines, delimiter=delimiter)
    return [(n, fields) for n, fields in enumerate(reader, start=1) if fields and any(f.strip() for f in fields)]


def assign_splits(files: list[str], root: Path, layout: DatasetLayout) -> dict[str, list[int]]:
    """Indices of `files` per split: as a split file says, or drawn with a fixed seed."""
    if layout.split_file:
        return _read_split_file(Path(layout.split_file), files)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(files))
    test = round(len(files) * layout.test_fraction)
    val = max(1, round(len(files) * layout.val_fraction))
    if len(files) - test - val < 1:
        raise LayoutError(f"{root}: {len(files)} labeled images are too few for a train, val and test split")
    return {
        "train": sorted(order[test + val :].tolist()),
        "val": sorted(order[test : test + val].tolist()),
        "test": sorted(order[:test].tolist()),
    }


def _read_split_file(path: Path, files: list[str]) -> dict[str, list[int]]:
    position = {name: n for n, name in enumerate(files)}
    splits: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for line_no, fields in _delimited_rows(path):
        where = f"{path}:{line_no}"
        if len(fields) != 2 or fields[1].strip() not in splits:
            raise LayoutError(f"{where}: expected `file<TAB or comma>train|val|test`, got {fields}")
        if fields[0].strip() not in position:
            raise LayoutError(f"{where}: {fields[0].strip()} is not a labeled image of the dataset")
        splits[fields[1].strip()].append(position[fields[0].strip()])
    listed = sum(len(ids) for ids in splits.values())
    if listed != len(files) or not splits["train"] or not splits["val"]:
        raise LayoutError(f"{path}: must give every labeled image ({len(files):,}) one split, with train and val "
                          f"not empty; it gives {listed:,}")  # fmt: skip
    return {name: sorted(ids) for name, ids in splits.items()}


def suggested_input_size(paths: list[Path], sample: int = 64) -> ImageSize:
    """The model input for images like these: their height rounded to 16 px (32-96), the width keeping their
    median aspect ratio (rounded to 8 px, at most 384). A 160x60 captcha gets 64x168, not the 96x192 made for
    600x320 ones. Sizes come from the files' headers; nothing is decoded."""
    picked = paths[:: max(1, len(paths) // sample)][:sample]
    sizes = []
    for path in picked:
        with Image.open(path, formats=IMAGE_FORMATS) as image:
            sizes.append(image.size)
    width = statistics.median(w for w, _ in sizes)
    height = statistics.median(h for _, h in sizes)
    model_height = min(96, max(32, _nearest_multiple(height, 16)))
    model_width = min(384, max(32, _nearest_multiple(model_height * width / height, 8)))
    return ImageSize(model_height, model_width)


def _nearest_multiple(value: float, step: int) -> int:
    return step * int(value / step + 0.5)  # halves round up, not to even
