"""Datasets of the user's own: labels in file names or in a label file, any characters, any length 1-16, a seeded
or given split; refusals that name the file and entry; train -> evaluate -> predict -> export -> read on them."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from imcaption import Recognizer
from imcaption.captcha.dataset import open_dataset
from imcaption.captcha.layouts import DatasetLayout, LayoutError, suggested_input_size
from imcaption.cli import main
from imcaption.images import ImageSize


def _image(path: Path, size: tuple[int, int] = (160, 60), shade: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (255 - shade, 255, 255)).save(path)
    return path


def _labels(root: Path, layout: DatasetLayout | None = None) -> dict[str, str]:
    dataset = open_dataset(root, layout)
    return {dataset.files[i]: word for i, word in dataset.labels.items()}


def test_labels_in_file_names_in_every_usual_scheme(tmp_path: Path) -> None:
    names = ["2b8x7.png", "Q7KD_0013.png", "0013_x9Y.png", "7_00001.jpg", "LONGLABEL012_ab12cd34ef.png",
             "日本語.png", "é-ß.png"]  # fmt: skip
    for name in names:
        _image(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image\n")
    assert _labels(tmp_path) == {
        "2b8x7.png": "2b8x7", "Q7KD_0013.png": "Q7KD", "0013_x9Y.png": "x9Y", "7_00001.jpg": "7",
        "LONGLABEL012_ab12cd34ef.png": "LONGLABEL012", "日本語.png": "日本語", "é-ß.png": "é-ß",
    }  # fmt: skip


def test_a_label_pattern_reads_other_naming_schemes(tmp_path: Path) -> None:
    _image(tmp_path / "img-AB12-x.png")
    _image(tmp_path / "img-zz-x.png")
    layout = DatasetLayout(label_pattern=r"^img-(?P<label>.+)-x$")
    assert _labels(tmp_path, layout) == {"img-AB12-x.png": "AB12", "img-zz-x.png": "zz"}
    _image(tmp_path / "other.png")
    with pytest.raises(LayoutError, match=r"other\.png: no label in the file name \(--label-pattern does not"):
        open_dataset(tmp_path, layout)


def test_a_csv_with_a_header_and_a_tsv_without_keep_labels_as_written(tmp_path: Path) -> None:
    csv_root, tsv_root = tmp_path / "csv", tmp_path / "tsv"
    for root in (csv_root, tsv_root):
        for name in ("a.png", "b.png", "c.png", "d.png"):
            _image(root / "images" / name)
    (csv_root / "labels.csv").write_text('file,label\nimages/a.png,null\nimages/b.png,0012\nimages/c.png,"x,y"\n'
                                         "images/d.png,NaN\n")  # fmt: skip
    (tsv_root / "labels.tsv").write_text("images/a.png\tnull\nimages/b.png\t0012\nimages/c.png\tTrue\n"
                                         "images/d.png\ta b\n")  # fmt: skip
    assert _labels(csv_root) == {"images/a.png": "null", "images/b.png": "0012", "images/c.png": "x,y",
                                 "images/d.png": "NaN"}  # fmt: skip
    assert _labels(tsv_root) == {"images/a.png": "null", "images/b.png": "0012", "images/c.png": "True",
                                 "images/d.png": "a b"}  # fmt: skip
    assert "a label file" in open_dataset(tsv_root).describe()
    named = DatasetLayout(label_file=str(tsv_root / "labels.tsv"))
    assert _labels(csv_root, named) == _labels(tsv_root)  # --label-file wins over the folder's own label file


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a.png,abc\na.png,abd\n", r"labels\.csv:2: a\.png is listed twice \(first on line 1\)"),
        ("a.png,abc\nmissing.png,abd\n", r"labels\.csv:2: image .*missing\.png not found"),
        ("a.png,abc,extra\n", r"labels\.csv:1: expected two fields"),
        ("a.png,\n", r"labels\.csv:1: the label is empty"),
        ("a.png,ABCDEFGHIJKLMNOPQ\n", "has 17 characters; at most 16"),
        ("file,label\n", r"labels\.csv: no labels found"),
    ],
)
def test_bad_label_files_are_refused_naming_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    _image(tmp_path / "a.png")
    (tmp_path / "labels.csv").write_text(content)
    with pytest.raises(LayoutError, match=message):
        open_dataset(tmp_path)


def test_a_folder_without_labels_is_refused_saying_what_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no images here\n")
    with pytest.raises(LayoutError, match="no labels found: no spec_train_val.txt .* no label file"):
        open_dataset(tmp_path)
    with pytest.raises(LayoutError, match="label file not found"):
        open_dataset(tmp_path, DatasetLayout(label_file=str(tmp_path / "nope.csv")))


def test_the_drawn_split_is_fixed_and_a_split_file_gives_it_as_written(tmp_path: Path) -> None:
    for n in range(50):
        _image(tmp_path / f"w{n}_{n:04d}.png")
    first, again = open_dataset(tmp_path), open_dataset(tmp_path)
    sizes = {name: len(split) for name, split in first.splits.items()}
    assert sizes == {"train": 40, "val": 5, "test": 5}
    assert all(first.splits[n].indices == again.splits[n].indices for n in sizes)
    assert sorted(i for s in first.splits.values() for i in s.indices) == list(range(50))
    split_file = tmp_path / "split.tsv"
    split_file.write_text("".join(f"w{n}_{n:04d}.png\t{'val' if n < 10 else 'train'}\n" for n in range(50)))
    given = open_dataset(tmp_path, DatasetLayout(split_file=str(split_file)))
    assert [given.labels[i] for i in given.split("val").indices] == [f"w{n}" for n in range(10)]
    assert len(given.split("test")) == 0
    split_file.write_text("w0_0000.png\ttrain\n")
    with pytest.raises(LayoutError, match="must give every labeled image"):
        open_dataset(tmp_path, DatasetLayout(split_file=str(split_file)))


def test_fractions_that_leave_nothing_to_train_on_are_refused() -> None:
    with pytest.raises(ValueError, match="leave no images to train on"):
        DatasetLayout(val_fraction=0.5, test_fraction=0.5)


def test_the_input_size_follows_the_images_aspect_ratio(tmp_path: Path) -> None:
    small = [_image(tmp_path / f"s{n}.png", (160, 60)) for n in range(3)]
    words = [_image(tmp_path / f"w{n}.png", (600, 320)) for n in range(3)]
    assert suggested_input_size(small) == ImageSize(64, 168)
    assert suggested_input_size(words) == ImageSize(96, 184)


def _round_trip_set(root: Path) -> None:
    """60 images labeled in their names: mixed case, digits, 1 to 12 characters, a validation-only character."""
    labels = ["A", "b7", "Xy9", "QQ12", "z" * 12, "9aB", "Kk", "m3M3"]
    for n in range(60):
        _image(root / f"{labels[n % len(labels)]}_{n:03d}.png", shade=n)


def test_train_evaluate_predict_export_and_read_on_a_custom_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data, run = tmp_path / "mine", tmp_path / "run"
    _round_trip_set(data)
    base = ["captcha", "train", str(data), "--out", str(run), "--max-steps", "3", "--batch-size", "8", "--quiet"]
    assert main([*base, "--case", "insensitive", "--val-fraction", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "labels in file names" in out and "training sat on" in out
    recognizer = Recognizer.load(run / "best.pt")
    assert recognizer.size == ImageSize(64, 168)  # from 160x60 images, not the words_captcha 96x192
    assert recognizer.tokenizer.max_length == 12 and "Q" not in recognizer.tokenizer.charset  # folded to lower case

    # evaluate and predict reopen the dataset as the checkpoint was trained: same folding, same split.
    report = tmp_path / "val.json"
    assert main(["captcha", "evaluate", str(run / "best.pt"), str(data), "--json", str(report), "--quiet"]) == 0
    assert '"count": 12' in report.read_text()
    answers = tmp_path / "answers.tsv"
    assert main(["captcha", "predict", str(run / "best.pt"), str(data), "--out", str(answers), "--quiet"]) == 0
    lines = answers.read_text().splitlines()
    assert len(lines) == 6 and all(line.split("\t")[0].endswith(".png") for line in lines)

    onnx = tmp_path / "mine.onnx"
    assert main(["captcha", "export", str(run / "best.pt"), "--onnx", str(onnx)]) == 0
    images = sorted(data.glob("*.png"))[:6]
    torch_words = [r.word for r in recognizer.read(images)]
    assert [r.word for r in Recognizer.load(onnx).read(images)] == torch_words
    assert all(set(word) <= set(recognizer.tokenizer.charset) for word in torch_words)


def test_validation_labels_the_model_cannot_write_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "mine"
    for n in range(40):
        _image(data / f"ab_{n:03d}.png")
    split_file = tmp_path / "split.tsv"
    _image(data / "XYZ_999.png")
    names = sorted(p.name for p in data.glob("*.png"))
    split_file.write_text("".join(f"{name}\t{'val' if name.startswith(('XYZ', 'ab_000')) else 'train'}\n"
                                  for name in names))  # fmt: skip
    run = tmp_path / "run"
    args = ["captcha", "train", str(data), "--out", str(run), "--max-steps", "1", "--split-file", str(split_file)]
    assert main([*args, "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "1 val labels cannot be read" in err and "characters never trained: XYZ" in err
