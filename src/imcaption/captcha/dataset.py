"""A captcha dataset: image files, their labels and the train / validation / test split.

The assignment's `words_captcha` layout (a0.png ... aN.png, spec_train_val.txt and, for synthetic sets only,
test_labels.txt) is read strictly, as the assignment defines it; `open_dataset` also reads the layouts people
have for their own captchas (imcaption.captcha.layouts)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from imcaption.captcha.labels import LabelRow, read_labels
from imcaption.captcha.layouts import DatasetLayout, assign_splits, find_labels

LABEL_FILE = "spec_train_val.txt"
TEST_LABEL_FILE = "test_labels.txt"
IMAGE_NAME = re.compile(r"^a(0|[1-9][0-9]*)\.png$")
SPLITS = ("train", "val", "test")


class DatasetError(ValueError):
    """The dataset folder cannot be used as it is."""


WORDS_LAYOUT = "words_captcha"


@dataclass(frozen=True)
class Split:
    name: str
    indices: Sequence[int]  # a range for words_captcha, sorted indices for drawn splits

    def __len__(self) -> int:
        return len(self.indices)


@dataclass
class CaptchaDataset:
    root: Path
    files: Sequence[str]  # image files relative to root, in index order
    labels: dict[int, str]
    splits: dict[str, Split] = field(default_factory=dict)
    layout: str = WORDS_LAYOUT
    how: str = "the words_captcha layout (spec_train_val.txt)"

    @property
    def image_count(self) -> int:
        return len(self.files)

    @property
    def is_words_layout(self) -> bool:
        return self.layout == WORDS_LAYOUT

    def image_id(self, index: int) -> str:
        """How answer files and reports name an image: a123 in the words_captcha layout, else its file."""
        return f"a{index}" if self.is_words_layout else self.files[index]

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
        return cls(root, WordsFiles(image_count), labels, split_spec(image_count, len(rows)))

    def image_path(self, index: int) -> Path:
        return self.root / self.files[index]

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise DatasetError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return self.splits[name]

    def words(self, split: Split) -> list[str]:
        missing = [i for i in split.indices if i not in self.labels]
        if missing:
            raise DatasetError(
                f"{self.root}: the {split.name} split has no labels (e.g. {self.image_id(missing[0])});"
                f" only a synthetic set ships {TEST_LABEL_FILE}"
            )
        return [self.labels[i] for i in split.indices]

    def describe(self) -> str:
        if self.is_words_layout:
            splits = [(name, s.indices) for name, s in self.splits.items() if len(s)]
            parts = [f"{name} a{ids[0]}-a{ids[-1]} ({len(ids):,})" for name, ids in splits]
            return f"{self.root}: {self.image_count:,} images; " + ", ".join(parts)
        parts = [f"{name} {len(s):,}" for name, s in self.splits.items() if len(s)]
        lengths = sorted({len(word) for word in self.labels.values()})
        return (f"{self.root}: {self.how}; {self.image_count:,} images; " + ", ".join(parts)
                + f"; labels of {lengths[0]}-{lengths[-1]} characters")  # fmt: skip


class WordsFiles(Sequence[str]):
    """a0.png ... a{count-1}.png without a list of 140,000 strings."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> str:  # type: ignore[override]
        if not 0 <= index < self.count:
            raise IndexError(index)
        return f"a{index}.png"


def open_dataset(root: str | Path, layout: DatasetLayout | None = None) -> CaptchaDataset:
    """The dataset in `root`, in whichever layout it has: words_captcha where spec_train_val.txt is (unless a
    label file is named), else a label file, else labels in the file names."""
    root, layout = Path(root), layout or DatasetLayout()
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    if (root / LABEL_FILE).is_file() and not layout.label_file:
        return CaptchaDataset.open(root)
    found = find_labels(root, layout)
    splits = assign_splits(found.files, root, layout)
    labels = dict(enumerate(found.labels))
    return CaptchaDataset(root, found.files, labels, {name: Split(name, ids) for name, ids in splits.items()},
                          layout="custom", how=found.how)  # fmt: skip


def split_spec(image_count: int, labeled_count: int) -> dict[str, Split]:
    """The assignment's split: labeled images are 5/6 train and 1/6 validation (100,000 + 20,000 of
    the real 120,000); unlabeled ones are the test set. For 140,000 images that is 5/7, 1/7, 1/7."""
    train_stop = round(labeled_count * 5 / 6)
    return {
        "train": Split("train", range(0, train_stop)),
        "val": Split("val", range(train_stop, labeled_count)),
        "test": Split("test", range(labeled_count, image_count)),
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
