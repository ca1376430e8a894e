"""The captioning data layer: word tokenizer, COCO reader, synthetic scenes."""

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from imcaption.captioning.coco import CocoFormatError, read_coco_captions, split_images
from imcaption.captioning.scenes import COLORS, SHAPES, render_scene
from imcaption.cli import main
from imcaption.text.word_tokenizer import END, PAD, START, UNK, WordTokenizer, normalize


def test_normalize_lowercases_and_drops_punctuation() -> None:
    assert normalize("A man, riding a HORSE!  (fast)") == ["a", "man", "riding", "a", "horse", "fast"]


def test_top_k_keeps_the_most_frequent_words() -> None:
    tokenizer = WordTokenizer.fit(["a cat", "a dog", "a cat sat", "the end"], top_k=2)
    assert tokenizer.words == ("a", "cat")
    assert tokenizer.vocab_size == 6
    assert tokenizer.encode("A cat and a dog.") == [START, 4, 5, UNK, 4, UNK, END]
    assert tokenizer.decode(tokenizer.encode("a cat and")) == "a cat <unk>"


def test_batch_pads_with_zero_and_cuts_long_captions() -> None:
    tokenizer = WordTokenizer.fit(["a b c d e"], top_k=10)
    batch = tokenizer.batch(["a b", "a b c d e"])
    assert PAD == 0 and batch.dtype == torch.long
    assert batch[0].tolist()[4:] == [PAD] * 3
    cut = tokenizer.batch(["a b c d e"], max_length=4)
    assert cut.tolist()[0][-1] == END and cut.shape == (1, 4)


def test_tokenizer_is_saved_and_restored() -> None:
    tokenizer = WordTokenizer.fit(["red circle", "blue square"])
    assert WordTokenizer.from_dict(tokenizer.to_dict()) == tokenizer


def _coco(tmp_path: Path, data: object, files: Sequence[str] = ()) -> Path:
    (tmp_path / "images").mkdir(exist_ok=True)
    for name in files:
        (tmp_path / "images" / name).write_bytes(b"")
    path = tmp_path / "captions_train.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_coco_reader_groups_captions_by_image_and_subsamples(tmp_path: Path) -> None:
    data = {
        "images": [{"id": 7, "file_name": "x.jpg"}, {"id": 9, "file_name": "y.jpg"}],
        "annotations": [
            {"id": 1, "image_id": 9, "caption": "a dog"},
            {"id": 2, "image_id": 7, "caption": "a cat "},
            {"id": 3, "image_id": 9, "caption": "the dog"},
        ],
    }
    path = _coco(tmp_path, data, ["x.jpg", "y.jpg"])
    images = read_coco_captions(path, tmp_path / "images")
    assert [(i.image_id, i.captions) for i in images] == [(7, ("a cat",)), (9, ("a dog", "the dog"))]
    first_two = read_coco_captions(path, tmp_path / "images", limit_captions=2)
    assert sum(len(i.captions) for i in first_two) == 2


@pytest.mark.parametrize(
    ("data", "files", "message"),
    [
        ("{not json", [], "not valid JSON"),
        ({"images": []}, [], '"images" and "annotations"'),
        (
            {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1, "caption": "x"}]},
            [],
            "image 1 is missing",
        ),
        (
            {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 2, "caption": "x"}]},
            ["a.jpg"],
            "annotations[0]: a caption for image 2, which is not among the images",
        ),
    ],
)
def test_coco_reader_errors_name_the_problem(tmp_path: Path, data: object, files: list[str], message: str) -> None:
    path = _coco(tmp_path, data, files)
    with pytest.raises(CocoFormatError) as err:
        read_coco_captions(path, tmp_path / "images")
    assert message in str(err.value) and str(path) in str(err.value)


def test_split_is_by_image_and_seeded(tmp_path: Path) -> None:
    from imcaption.captioning.coco import CaptionedImage

    images = [CaptionedImage(i, tmp_path / f"{i}.jpg", ("x",)) for i in range(50)]
    train, val = split_images(images, 0.2, seed=3)
    assert len(train) == 40 and len(val) == 10
    assert not {i.image_id for i in train} & {i.image_id for i in val}
    assert split_images(images, 0.2, seed=3) == (train, val)
    assert split_images(images, 0.2, seed=4) != (train, val)


def test_scene_captions_name_every_object_and_boxes_hold_them() -> None:
    for index in range(40):
        scene = render_scene(0, index)
        assert 1 <= len(scene.objects) <= 3
        assert len(set(scene.captions)) == len(scene.captions) >= 3
        for caption in scene.captions:
            words = caption.split()
            assert [w for w in words if w in SHAPES] and len([w for w in words if w in SHAPES]) == len(scene.objects)
            assert len([w for w in words if w in COLORS]) == len(scene.objects)
        pixels = scene.image.load()
        for obj in scene.objects:
            x, y, w, h = obj.bbox
            assert 0 <= x and x + w <= 128 and 0 <= y and y + h <= 128
            assert pixels[x + w // 2, y + h // 2] == COLORS[obj.color]


def test_scenes_cli_writes_a_coco_dataset_the_reader_accepts(tmp_path: Path) -> None:
    assert main(["caption", "scenes", str(tmp_path), "--count", "20", "--test-count", "3", "--quiet"]) == 0
    train, val, test = (
        read_coco_captions(tmp_path / "annotations" / f"captions_{split}.json", tmp_path / "images")
        for split in ("train", "val", "test")
    )
    assert len(train) == 18 and len(val) == 2 and len(test) == 3
    ids = [{image.image_id for image in split} for split in (train, val, test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])  # no scene in two splits
    objects = json.loads((tmp_path / "annotations" / "objects.json").read_text())
    assert set(objects) == {str(i) for i in range(23)}
    assert all(len(o["bbox"]) == 4 for obj in objects.values() for o in obj)
