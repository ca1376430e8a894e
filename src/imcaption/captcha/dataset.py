"""The `words_captcha` folder layout: a0.png ... aN.png, spec_train_val.txt and (synthetic sets only)
test_labels.txt; and its train / validation / test split."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from imcaption.captcha.labels import LabelRow, read_labels

LABEL_FILE = "spec_train_val.txt"
TEST_LABEL_FILE = "test_labels.txt"
IMAGE_NAME = re.compile(r"^a(0|[1-9][0-9]*)\.png$")
SPLITS = ("train", "val", "test")


class DatasetError(ValueError):
    """The dataset folder cannot be used as it is."""


@dataclass(frozen=True)
class Split:
    name: str
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start

    @property
    def indices(self) -> range:
        return range(self.start, self.stop)


@dataclass
class CaptchaDataset:
    root: Path
    image_count: int
    labels: dict[int, str]
    splits: dict[str, Split] = field(default_factory=dict)

    @classmethod
    def open(cls, root: str | Path) -> CaptchaDataset:
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"dataset folder not found: {root}")
        image_count = _count_images(root)
        rows = read_labels(root / LABEL_FILE)
        _check_labels_cover_images(root, rows, image_count)
        labels = {row.index: row.word for row in rows}
        test_labels = root / TEST_LABEL_FILE
        if test_labels.is_file():
            labels.update({row.index: row.word for row in read_labels(test_labels)})
        return cls(root, image_count, labels, split_spec(image_count, len(rows)))

    def image_path(self, index: int) -> Path:
        return self.root / f"a{index}.png"

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise DatasetError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return self.splits[name]

    def words(self, split: Split) -> list[str]:
        missing = [i for i in split.indices if i not in self.labels]
        if missing:
            raise DatasetError(
                f"{self.root}: the {split.name} split has no labels (e.g. a{missing[0]});"
                f" only a synthetic set ships {TEST_LABEL_FILE}"
            )
        return [self.labels[i] for i in split.indices]

    def describe(self) -> str:
        parts = [f"{name} a{s.start}-a{s.stop - 1} ({len(s):,})" for name, s in self.splits.items() if len(s)]
        return f"{self.root}: {self.image_count:,} images; " + ", ".join(parts)


def split_spec(image_count: int, labeled_count: int) -> dict[str, Split]:
    """The assignment's split: labeled images are 5/6 train and 1/6 validation (100,000 + 20,000 of
    the real 120,000); unlabeled ones are the test set. For 140,000 images that is 5/7, 1/7, 1/7."""
    train_stop = round(labeled_count * 5 / 6)
    return {
        "train": Split("train", 0, train_stop),
        "val": Split("val", train_stop, labeled_count),
        "test": Split("test", labeled_count, image_count),
    }


def _count_images(root: Path) -> int:
    indices = []
    with os.scandir(root) as entries:
        for entry in entries:
            match = IMAGE_NAME.match(entry.name)
            if match:
                indices.append(int(match.group(1)))
    if not indices:
        raise DatasetError(f"{root}: no images named a0.png, a1.png, ...")
    indices.sort()
    count = indices[-1] + 1
    if len(indices) != count:
        present = set(indices)
        gap = next(i for i in range(count) if i not in present)
        raise DatasetError(f"missing image {root / f'a{gap}.png'} (images run up to a{count - 1}.png)")
    return count


def _check_labels_cover_images(root: Path, rows: list[LabelRow], image_count: int) -> None:
    label_file = root / LABEL_FILE
    if not rows:
        raise DatasetError(f"{label_file}: no labels")
    for expected, row in enumerate(rows):
        if row.index != expected:
            raise DatasetError(f"{label_file}: labels must run a0, a1, ... without gaps; a{expected} is missing")
    if rows[-1].index >= image_count:
        raise DatasetError(f"missing image {root / f'a{rows[-1].index}.png'} (labeled in {label_file})")
