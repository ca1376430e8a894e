"""Real photographs through `caption describe` and the Python API: the sample photos that ship inside installed
packages (matplotlib's, and scikit-image's where it is installed), and variants made from them here: grayscale,
16-bit, RGBA, very large, very small, and a JPEG stored sideways with its EXIF orientation. A model trained on the
synthetic scenes captions photos badly; what is tested is that every file is read, upright, and gets a caption
and an attention grid of the right shape."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image

from imcaption.api import Captioner
from imcaption.captioning.reading_types import BaseCaptioner
from imcaption.cli import main
from imcaption.images import EXIF_ORIENTATION, load_image

SIDE = 64  # a 4 x 4 grid of 16-px cells for the from-scratch encoder
# EXIF orientation 6: the camera was turned a quarter clockwise; the stored pixels must be turned the same way.
TURNED_CLOCKWISE = 6


def _shipped_photos() -> list[Path]:
    """Photos and pictures shipped inside installed packages: matplotlib is always there beside captioning
    (the 'train' extra); scikit-image's data folder is added where it is installed (the 'dev' extra)."""
    sample_data = Path(matplotlib.get_data_path()) / "sample_data"
    photos = [
        sample_data / "grace_hopper.jpg",
        sample_data / "Minduka_Present_Blue_Pack.png",
        sample_data / "logo2.png",
    ]
    skimage = importlib.util.find_spec("skimage")
    if skimage is not None and skimage.submodule_search_locations:
        data = Path(next(iter(skimage.submodule_search_locations))) / "data"
        photos += [path for path in (data / "camera.png", data / "rocket.jpg") if path.is_file()]
    return [path for path in photos if path.is_file()]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The shipped photos by name, and the variants made from Grace Hopper's portrait (512 x 600, JPEG)."""
    found = {path.name: path for path in _shipped_photos()}
    assert "grace_hopper.jpg" in found, "matplotlib's sample photo is missing"
    out = tmp_path_factory.mktemp("photos")
    portrait = Image.open(found["grace_hopper.jpg"]).convert("RGB")
    variants = {
        "gray.png": portrait.convert("L"),
        "gray16.png": Image.fromarray(np.asarray(portrait.convert("L"), dtype=np.uint16) * 257),
        "large.jpg": portrait.resize((3600, 4200)),
        "tiny.png": portrait.resize((5, 6)),
    }
    rgba = portrait.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(portrait.size))  # transparent at the top, opaque at the bottom
    variants["rgba.png"] = rgba
    for name, image in variants.items():
        image.save(out / name)
        found[name] = out / name
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = TURNED_CLOCKWISE
    portrait.save(out / "sideways.jpg", exif=exif, quality=95)
    found["sideways.jpg"] = out / "sideways.jpg"
    return found


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sat captioner trained for a few steps on tiny scenes: enough to say words, not to caption photos."""
    data = tmp_path_factory.mktemp("scenes")
    assert main(["caption", "scenes", str(data), "--count", "40", "--test-count", "2", "--size", "64", "--quiet"]) == 0
    run = tmp_path_factory.mktemp("run") / "run"
    options = ["--image-size", str(SIDE), "--batch-size", "16", "--max-steps", "12", "--warmup-steps", "1",
               "--lr", "0.01", "--limit-captions", "96", "--threads", "1", "--precision", "fp32"]  # fmt: skip
    assert main(["caption", "train", str(data), "--out", str(run), "--quiet", *options]) == 0
    return run / "last.pt"


def test_the_test_has_real_photos_of_each_kind(photos: dict[str, Path]) -> None:
    modes = {Image.open(path).mode for path in photos.values()}
    formats = {Image.open(path).format for path in photos.values()}
    assert {"RGB", "RGBA", "L", "I;16"} <= modes and {"JPEG", "PNG"} <= formats
    assert Image.open(photos["sideways.jpg"]).getexif()[EXIF_ORIENTATION] == TURNED_CLOCKWISE


def test_an_exif_rotated_jpeg_is_read_upright(photos: dict[str, Path], checkpoint: Path) -> None:
    stored = np.asarray(Image.open(photos["sideways.jpg"]).convert("RGB"))
    assert stored.shape[:2] == (600, 512)  # stored as the portrait was: 512 wide, 600 high
    upright = np.rot90(stored, k=-1)  # a quarter turn clockwise, as orientation 6 says
    read = load_image(photos["sideways.jpg"])
    assert read.size == (600, 512)  # the size as read is the turned one: 600 wide, 512 high
    np.testing.assert_array_equal(np.asarray(read), upright)
    captioner = Captioner.load(checkpoint)
    # The captioner sees the upright picture, whether it is given the file or the turned pixels.
    np.testing.assert_array_equal(captioner.pixels([photos["sideways.jpg"]]), captioner.pixels([upright.copy()]))
    assert captioner.caption(photos["sideways.jpg"]).text == captioner.caption(upright.copy()).text


def _assert_captioned(captioner: BaseCaptioner, caption_text: str, attention: np.ndarray) -> None:
    words = caption_text.split()
    assert words and set(words) <= set(captioner.tokenizer.words)
    assert attention.shape[1:] == captioner.grid == (SIDE // 16, SIDE // 16)
    assert attention.shape[0] in (len(words), len(words) + 1)  # each word's step, and <end>'s where it ended
    np.testing.assert_allclose(attention.sum(axis=(1, 2)), 1.0, atol=1e-5)


def test_the_python_api_captions_every_photo_with_an_attention_grid(photos: dict[str, Path], checkpoint: Path) -> None:
    captioner = Captioner.load(checkpoint)
    names = sorted(photos)
    captions = captioner.caption([photos[name] for name in names], attention=True, batch_size=4)
    assert len(captions) == len(names)
    for name, caption in zip(names, captions, strict=True):
        assert caption.attention is not None, name
        _assert_captioned(captioner, caption.text, caption.attention)
    # A PIL image and an array of the same photo read as its file does.
    portrait = Image.open(photos["grace_hopper.jpg"])
    by_file = captions[names.index("grace_hopper.jpg")].text
    assert captioner.caption(portrait).text == captioner.caption(np.asarray(portrait)).text == by_file
    assert [c.text for c in captioner.caption([photos[name] for name in names], beam=3)]  # beam search reads them too


def test_describe_captions_every_photo_and_draws_the_attention_of_two(
    photos: dict[str, Path], checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    paths = [str(photos[name]) for name in sorted(photos)]
    assert main(["caption", "describe", str(checkpoint), *paths, "--quiet"]) == 0
    captions = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [path for path, _ in captions] == paths
    assert all(text.strip() for _, text in captions)
    # Drawing is the slow part (a panel per word), so two photos: the one stored sideways and the tiny one.
    drawn = [str(photos["sideways.jpg"]), str(photos["tiny.png"])]
    assert main(["caption", "describe", str(checkpoint), *drawn, "--attention", str(tmp_path / "att.png")]) == 0
    assert capsys.readouterr().out.count("attention: ") == 2
    assert all(Image.open(tmp_path / f"att_{n}.png").size[0] > 100 for n in range(2))
