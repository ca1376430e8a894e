import shutil
from pathlib import Path

import pytest
from PIL import Image

from imcaption.captcha.dataset import CaptchaDataset, DatasetError, split_spec
from imcaption.captcha.labels import LabelFileError


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".imcaption_cache"))
    return dst


def test_spec_split_for_the_real_size() -> None:
    splits = split_spec(140_000, 120_000)
    assert splits["train"].indices == range(0, 100_000)
    assert splits["val"].indices == range(100_000, 120_000)
    assert splits["test"].indices == range(120_000, 140_000)


@pytest.mark.parametrize(("count", "sizes"), [(140, (100, 20, 20)), (700, (500, 100, 100)), (14, (10, 2, 2))])
def test_split_keeps_the_5_1_1_proportions(count: int, sizes: tuple[int, int, int]) -> None:
    splits = split_spec(count, count * 6 // 7)
    assert tuple(len(splits[name]) for name in ("train", "val", "test")) == sizes


def test_open_reads_a_generated_set(small_dataset: Path) -> None:
    dataset = CaptchaDataset.open(small_dataset)
    assert dataset.image_count == 140
    assert [len(dataset.split(n)) for n in ("train", "val", "test")] == [100, 20, 20]
    assert len(dataset.words(dataset.split("test"))) == 20  # the synthetic test labels
    assert "train a0-a99 (100), val a100-a119 (20), test a120-a139 (20)" in dataset.describe()


def test_real_layout_without_test_labels_has_an_unlabeled_test_split(small_dataset: Path, tmp_path: Path) -> None:
    root = _copy(small_dataset, tmp_path / "real")
    (root / "test_labels.txt").unlink()
    dataset = CaptchaDataset.open(root)
    assert len(dataset.split("test")) == 20
    with pytest.raises(DatasetError, match="no labels"):
        dataset.words(dataset.split("test"))


def test_missing_image_is_named(small_dataset: Path, tmp_path: Path) -> None:
    root = _copy(small_dataset, tmp_path / "d")
    (root / "a57.png").unlink()
    with pytest.raises(DatasetError, match=r"missing image .*a57\.png"):
        CaptchaDataset.open(root)


def test_labeled_image_beyond_the_last_file_is_named(small_dataset: Path, tmp_path: Path) -> None:
    root = _copy(small_dataset, tmp_path / "d")
    for index in range(110, 140):
        (root / f"a{index}.png").unlink()
    with pytest.raises(DatasetError, match=r"missing image .*a119\.png"):
        CaptchaDataset.open(root)


def test_malformed_label_file_is_reported_with_its_line(small_dataset: Path, tmp_path: Path) -> None:
    root = _copy(small_dataset, tmp_path / "d")
    lines = (root / "spec_train_val.txt").read_text().splitlines()
    lines[4] = "a4 BAD!"
    (root / "spec_train_val.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(LabelFileError, match=r"spec_train_val\.txt:5: label 'BAD!'"):
        CaptchaDataset.open(root)


def test_duplicate_id_is_reported(small_dataset: Path, tmp_path: Path) -> None:
    root = _copy(small_dataset, tmp_path / "d")
    with (root / "spec_train_val.txt").open("a") as handle:
        handle.write("a3 dupe\n")
    with pytest.raises(LabelFileError, match=r":121: duplicate id a3"):
        CaptchaDataset.open(root)


def test_missing_label_file(small_dataset: Path, tmp_path: Path) -> None:
    root = _copy(small_dataset, tmp_path / "d")
    (root / "spec_train_val.txt").unlink()
    with pytest.raises(FileNotFoundError, match="spec_train_val.txt"):
        CaptchaDataset.open(root)


def test_unknown_split_is_refused(small_dataset: Path) -> None:
    with pytest.raises(DatasetError, match="unknown split 'dev'"):
        CaptchaDataset.open(small_dataset).split("dev")


def test_not_a_dataset_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no images"):
        CaptchaDataset.open(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "other.png")
    with pytest.raises(DatasetError, match="no images"):
        CaptchaDataset.open(tmp_path)
