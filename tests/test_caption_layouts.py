"""Caption sets in the layouts people have: a COCO captions folder, a COCO 2014 tree as unpacked, Karpathy split
files for COCO and Flickr8k; the vocabulary's minimum count and the caption length limit; one-line refusals that
name the file and the entry; and a tiny training run with evaluation on a Karpathy and a COCO 2014 fixture."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from imcaption.api import Captioner
from imcaption.captioning.coco import CaptionedImage, CaptionFormatError, CocoFormatError
from imcaption.captioning.layouts import open_caption_data
from imcaption.captioning.task import within_length
from imcaption.cli import main
from imcaption.text.word_tokenizer import UNK, WordTokenizer

# Two words that tell the images apart, and "zebra", seen once in the training captions.
CAPTIONS = {0: ["a red square", "a red box"], 1: ["a blue square", "a blue box"], 2: ["a red zebra", "a red box"]}


def _image(path: Path, shade: int = 0) -> Path:
    """A tiny image: PNG or JPEG by the name's ending."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24, 20), (200 - shade, 40 + shade, 90)).save(path)
    return path


def _captions(n: int) -> list[str]:
    return CAPTIONS.get(n, ["a blue square", "a blue box"] if n % 2 else ["a red square", "a red box"])


def _write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _coco_file(path: Path, names: dict[int, str]) -> Path:
    images = [{"id": image_id, "file_name": name} for image_id, name in names.items()]
    annotations = [{"id": len(names) * 10 + n, "image_id": image_id, "caption": caption}
                   for image_id in names for n, caption in enumerate(_captions(image_id))]  # fmt: skip
    return _write(path, {"images": images, "annotations": annotations})


def coco_2014_tree(root: Path, year: str = "2014") -> Path:
    """ROOT/annotations/captions_{train,val}2014.json + ROOT/{train,val}2014/COCO_*2014_000000xxxxxx.jpg (2017:
    000000xxxxxx.jpg in train2017/, val2017/)."""
    for split, ids in (("train", range(6)), ("val", range(100, 102))):
        prefix = f"COCO_{split}{year}_" if year == "2014" else ""
        names = {i: f"{prefix}{i:012d}.jpg" for i in ids}
        for image_id, name in names.items():
            _image(root / f"{split}{year}" / name, image_id % 2 * 60)
        _coco_file(root / "annotations" / f"captions_{split}{year}.json", names)
    return root


def coco_folder(root: Path) -> Path:
    """What `caption scenes` writes: annotations/captions_{train,val,test}.json and images/."""
    for split, ids in (("train", range(4)), ("val", range(10, 12)), ("test", range(20, 21))):
        names = {i: f"s{i}.png" for i in ids}
        for image_id, name in names.items():
            _image(root / "images" / name, image_id % 2 * 60)
        _coco_file(root / "annotations" / f"captions_{split}.json", names)
    return root


def _karpathy_entry(n: int, split: str, filename: str, **extra: object) -> dict:
    sentences = [{"tokens": c.split(), "raw": c.capitalize() + " .", "imgid": n, "sentid": 5 * n + k}
                 for k, c in enumerate(_captions(n))]  # fmt: skip
    return {"filename": filename, "split": split, "sentences": sentences, "sentids": [], **extra}


def karpathy_flickr8k(root: Path, splits: tuple[str, ...] = ("train",) * 6 + ("val", "val", "test", "test")) -> Path:
    """ROOT/dataset_flickr8k.json with its images flat in ROOT/Flicker8k_Dataset/, as the two downloads unpack."""
    images = []
    for n, split in enumerate(splits):
        name = f"{1000 + n}_{n:04x}.jpg"
        _image(root / "Flicker8k_Dataset" / name, n % 2 * 60)
        images.append(_karpathy_entry(n, split, name, imgid=n))
    return _write(root / "dataset_flickr8k.json", {"images": images, "dataset": "flickr8k"})


def karpathy_coco(root: Path) -> Path:
    """ROOT/dataset_coco.json: images in train2014/ and val2014/ (filepath), val2014 images also in restval."""
    splits = [("train", "train2014"), ("restval", "val2014"), ("val", "val2014"), ("test", "val2014")]
    images = []
    for n, (split, folder) in enumerate(splits):
        name = f"COCO_{folder}_{n:012d}.jpg"
        _image(root / folder / name)
        images.append(_karpathy_entry(n, split, name, filepath=folder, cocoid=500 + n, imgid=n))
    return _write(root / "dataset_coco.json", {"images": images, "dataset": "coco"})


def _by_split(data_path: Path) -> dict[str, list[CaptionedImage]]:
    data = open_caption_data(data_path)
    return {split: data.read(split) for split in data.readers}


def test_a_coco_2014_tree_is_read_as_unpacked_from_its_root_or_an_annotation_file(tmp_path: Path) -> None:
    root = coco_2014_tree(tmp_path / "coco")
    data = open_caption_data(root)
    assert data.layout == "COCO 2014 captions JSON" and set(data.readers) == {"train", "val"}
    train, val = data.read("train"), data.read("val")
    assert [image.path for image in train] == [root / "train2014" / f"COCO_train2014_{i:012d}.jpg" for i in range(6)]
    assert [image.image_id for image in val] == [100, 101] and val[0].path.parent == root / "val2014"
    assert train[2].captions == ("a red zebra", "a red box")
    assert data.held_out() == "val"  # COCO 2014 has no captioned test split
    for annotation in ("captions_train2014.json", "captions_val2014.json"):  # each file finds the other beside it
        assert _by_split(root / "annotations" / annotation) == {"train": train, "val": val}
    coco_2017 = _by_split(coco_2014_tree(tmp_path / "coco2017", year="2017"))
    assert [image.path.name for image in coco_2017["val"]] == ["000000000100.jpg", "000000000101.jpg"]
    assert coco_2017["train"][0].path == tmp_path / "coco2017" / "train2017" / "000000000000.jpg"


def test_the_coco_captions_folder_keeps_its_images_folder_and_test_split(tmp_path: Path) -> None:
    root = coco_folder(tmp_path / "scenes")
    data = open_caption_data(root)
    assert data.layout == "COCO captions JSON" and data.held_out() == "test" and data.held_out("val") == "val"
    splits = {split: data.read(split) for split in ("train", "val", "test")}
    assert {s: [i.image_id for i in images] for s, images in splits.items()} == {
        "train": [0, 1, 2, 3], "val": [10, 11], "test": [20]}  # fmt: skip
    assert all(image.path.parent == root / "images" for images in splits.values() for image in images)
    assert data.root == root and data.files["test"] == root / "annotations" / "captions_test.json"


def test_karpathy_coco_joins_restval_to_train_and_finds_images_by_filepath(tmp_path: Path) -> None:
    file = karpathy_coco(tmp_path / "coco")
    data = open_caption_data(file.parent)  # the folder holding one Karpathy file is the same set
    assert data.layout == "Karpathy split JSON (coco)"
    train, val, test = data.read("train"), data.read("val"), data.read("test")
    assert [i.image_id for i in train] == [500, 501] and [i.image_id for i in val] == [502] and len(test) == 1
    assert [i.path.relative_to(file.parent).as_posix() for i in train] == [
        "train2014/COCO_train2014_000000000000.jpg", "val2014/COCO_val2014_000000000001.jpg"]  # fmt: skip
    assert val[0].captions == ("A red zebra .", "A red box .")  # `raw`, the text a COCO captions file holds
    assert data.held_out() == "test"


def test_karpathy_flickr8k_finds_its_flat_image_folder_and_keeps_the_first_captions(tmp_path: Path) -> None:
    file = karpathy_flickr8k(tmp_path / "flickr8k")
    splits = _by_split(file)
    assert {split: len(images) for split, images in splits.items()} == {"train": 6, "val": 2, "test": 2}
    assert splits["train"][1].path == file.parent / "Flicker8k_Dataset" / "1001_0001.jpg"
    assert splits["test"][0].image_id == 8
    first = open_caption_data(file).read("train", limit_captions=3)
    assert [image.captions for image in first] == [("A red square .", "A red box ."), ("A blue square .",)]


def test_the_format_comes_from_the_content_not_the_name(tmp_path: Path) -> None:
    karpathy = karpathy_flickr8k(tmp_path)
    disguised = tmp_path / "captions_train.json"
    disguised.write_bytes(karpathy.read_bytes())
    assert open_caption_data(disguised).layout == "Karpathy split JSON (flickr8k)"
    _write(tmp_path / "other" / "dataset_x.json", {"images": [{"id": 1}], "annotations": []})
    with pytest.raises(CaptionFormatError, match="whose name does not say their split"):
        open_caption_data(tmp_path / "other" / "dataset_x.json")  # COCO content: read as COCO, not Karpathy


def test_an_image_folder_elsewhere_is_named_with_image_dir(tmp_path: Path) -> None:
    file = karpathy_flickr8k(tmp_path / "unpacked")
    moved = _write(tmp_path / "splits" / "deep" / "dataset_flickr8k.json", json.loads(file.read_text()))
    with pytest.raises(CaptionFormatError, match=r"images\[0\]: image 0 is missing: .*--image-dir"):
        open_caption_data(moved)
    images = open_caption_data(moved, tmp_path / "unpacked" / "Flicker8k_Dataset").read("val")
    assert [image.path.name for image in images] == ["1006_0006.jpg", "1007_0007.jpg"]


def test_min_word_count_turns_rare_words_into_unk_and_the_vocabulary_round_trips() -> None:
    captions = [c for n in range(6) for c in _captions(n)]
    every = WordTokenizer.fit(captions)  # the default keeps every word, as before the option existed
    assert "zebra" in every.words
    common = WordTokenizer.fit(captions, min_count=2)
    assert "zebra" not in common.words and {"red", "blue", "box"} <= set(common.words)
    restored = WordTokenizer.from_dict(json.loads(json.dumps(common.to_dict())))
    assert restored == common and restored.encode("a red zebra")[3] == UNK
    assert restored.decode(restored.encode("a red zebra")) == "a red <unk>"


def test_max_length_drops_long_training_captions_whole(tmp_path: Path) -> None:
    long = "a red square on a table beside a long line of text"  # 12 words: 14 tokens
    images = [
        CaptionedImage(0, tmp_path / "a.png", ("a red square", long)),
        CaptionedImage(1, tmp_path / "b.png", (long,)),
    ]
    kept, dropped = within_length(images, 14)
    assert dropped == 0 and kept == images
    kept, dropped = within_length(images, 13)
    assert dropped == 2 and kept == [CaptionedImage(0, tmp_path / "a.png", ("a red square",))]
    with pytest.raises(ValueError, match="--max-length 4 drops every training caption: the shortest has 5"):
        within_length(images, 4)


def _edit(file: Path, change: Callable[[dict], object]) -> None:
    data = json.loads(file.read_text())
    change(data)
    file.write_text(json.dumps(data))


def _flickr(tmp_path: Path) -> Path:
    return karpathy_flickr8k(tmp_path)


def _coco(tmp_path: Path) -> Path:
    return coco_2014_tree(tmp_path) / "annotations" / "captions_train2014.json"


BAD_FILES = {
    "a missing field": (_flickr, lambda d: d["images"][3].pop("sentences"), 'images[3]: "sentences" missing'),
    "an unknown split": (_flickr, lambda d: d["images"][1].update(split="dev"), "images[1]: \"split\" is 'dev'"),
    "an empty caption": (
        _flickr, lambda d: d["images"][2]["sentences"][1].update(raw=" . "), "images[2]: sentences[1]: empty caption"
    ),
    "an empty COCO caption": (_coco, lambda d: d["annotations"][4].update(caption=""), "annotations[4]: empty caption"),
    "a COCO field missing": (
        _coco, lambda d: d["annotations"][1].pop("image_id"), 'annotations[1]: "image_id" missing'
    ),
    "a caption of an unlisted image": (
        _coco, lambda d: d["annotations"][5].update(image_id=77), "annotations[5]: a caption for image 77, which is not"
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_entry_is_one_line_naming_the_file_and_the_entry(tmp_path: Path, case: str) -> None:
    make, change, message = BAD_FILES[case]
    file = make(tmp_path)
    _edit(file, change)
    with pytest.raises(CocoFormatError) as err:  # the old name still catches it, and it is a ValueError
        _by_split(file)
    assert isinstance(err.value, ValueError) and "\n" not in str(err.value)
    assert str(err.value).startswith(f"{file}: ") and message in str(err.value)


@pytest.mark.parametrize(
    ("make", "missing", "entry"),
    [(_flickr, "Flicker8k_Dataset/1004_0004.jpg", "images[4]: image 4 is missing"),
     (_coco, "train2014/COCO_train2014_000000000003.jpg", "images[3]: image 3 is missing")],
)  # fmt: skip
def test_a_caption_for_an_absent_image_names_its_entry(
    tmp_path: Path, make: Callable[[Path], Path], missing: str, entry: str
) -> None:
    file = make(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(CaptionFormatError) as err:
        _by_split(file)
    assert str(err.value) == f"{file}: {entry}: {tmp_path / missing}"


@pytest.mark.parametrize(
    ("content", "message"),
    [(b'{"images": [], "annotations": [] \xff}', "not UTF-8 text (byte 0xff at offset 33)"),
     (b'{"images": [}', "not valid JSON (Expecting value: line 1 column 13"),
     (b'{"images": [{"id": 1}]}', 'neither COCO captions (an object with "images" and "annotations" lists)')],
)  # fmt: skip
def test_a_file_that_is_no_caption_file_says_why(tmp_path: Path, content: bytes, message: str) -> None:
    file = tmp_path / "annotations" / "captions_train.json"
    file.parent.mkdir()
    file.write_bytes(content)
    with pytest.raises(CaptionFormatError) as err:
        open_caption_data(tmp_path)
    assert str(err.value).startswith(f"{file}: {message}") and "\n" not in str(err.value)


TINY = ["--image-size", "32", "--batch-size", "4", "--epochs", "1", "--max-steps", "2", "--warmup-steps", "1",
        "--threads", "1", "--quiet"]  # fmt: skip


def _train_and_evaluate(data: Path, run: Path, evaluate_on: Path, capsys: pytest.CaptureFixture, *options: str) -> str:
    assert main(["caption", "train", str(data), "--out", str(run), *TINY, *options]) == 0
    assert (run / "best.pt").is_file() and json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 2
    assert (
        main(["caption", "evaluate", str(run / "best.pt"), str(evaluate_on), "--json", str(run / "scores.json")]) == 0
    )
    assert 0.0 <= json.loads((run / "scores.json").read_text())["bleu4"] <= 1.0
    return capsys.readouterr().out


def test_a_karpathy_set_trains_two_steps_and_evaluates_on_its_test_split(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    file = karpathy_flickr8k(tmp_path / "flickr8k")
    out = _train_and_evaluate(file, tmp_path / "run", file.parent, capsys, "--min-word-count", "2")
    assert "found Karpathy split JSON (flickr8k)" in out and "6 train, 2 val, 2 test images" in out
    assert "6 images, 12 captions" in out and "words seen fewer than 2 times are <unk>" in out
    assert "2 images of the test split (dataset_flickr8k.json)" in out
    tokenizer = Captioner.load(tmp_path / "run" / "best.pt").tokenizer  # the vocabulary, back from the checkpoint
    assert "zebra" not in tokenizer.words and "red" in tokenizer.words and tokenizer.encode("a zebra")[2] == UNK


def test_a_coco_2014_tree_trains_two_steps_and_evaluates_on_val2014(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = coco_2014_tree(tmp_path / "coco")
    long = {"id": 999, "image_id": 0, "caption": "one two three four five six"}  # 8 tokens
    _edit(root / "annotations" / "captions_train2014.json", lambda d: d["annotations"].append(long))
    out = _train_and_evaluate(root, tmp_path / "run", root / "annotations" / "captions_val2014.json", capsys,
                              "--max-length", "7")  # fmt: skip
    assert "found COCO 2014 captions JSON" in out and "train2014.json" in out
    assert "6 images, 12 captions (1 longer than 7 tokens dropped)" in out
    assert "2 images of the val split (captions_val2014.json)" in out
    assert "zebra" in Captioner.load(tmp_path / "run" / "best.pt").tokenizer.words  # every word by default
