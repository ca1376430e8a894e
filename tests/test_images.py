"""The one decode path: every odd input gives an upright RGB image or one clean error naming the file."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
from PIL import Image

from imcaption.cli import main
from imcaption.images import ImageReadError, ImageSize, as_image, load_image, png_pixels, to_model_input
from tests.abuse_corpus import EPS, saved_as


def _png_claiming(path: Path, width: int, height: int) -> None:
    """A tiny PNG whose header says width x height: decoding it for real would need gigabytes."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    path.write_bytes(bytes(data))


def _readable(folder: Path) -> dict[str, tuple[int, int]]:
    """Files that must decode, and the (width, height) they must decode to."""
    base = Image.new("RGB", (60, 32), (200, 30, 30))
    base.save(folder / "rgb.png")
    Image.fromarray((np.arange(60 * 32).reshape(32, 60) * 30).astype(np.uint16)).save(folder / "gray16.png")
    base.convert("P").save(folder / "palette.png", transparency=0)
    base.convert("CMYK").save(folder / "cmyk.jpg")
    base.convert("LA").save(folder / "la.png")
    base.convert("RGBA").save(folder / "rgba.png")
    base.convert("L").save(folder / "gray.png")
    frames = [base, Image.new("RGB", (60, 32), (0, 0, 255))]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees to show
    base.save(folder / "sideways.jpg", exif=exif)
    return {"rgb.png": (60, 32), "gray16.png": (60, 32), "palette.png": (60, 32), "cmyk.jpg": (60, 32),
            "la.png": (60, 32), "rgba.png": (60, 32), "gray.png": (60, 32), "animated.gif": (60, 32),
            "sideways.jpg": (32, 60)}  # fmt: skip


def _unreadable(folder: Path) -> dict[str, str]:
    """Files that must be refused, and a word the message must hold."""
    (folder / "empty.png").write_bytes(b"")
    Image.new("RGB", (200, 100), (1, 2, 3)).save(folder / "whole.png")
    (folder / "truncated.png").write_bytes((folder / "whole.png").read_bytes()[:80])
    (folder / "text.png").write_text("this is not an image\n")
    (folder / "folder.png").mkdir()
    _png_claiming(folder / "huge.png", 30000, 30000)
    # Formats outside the allow-list, named .png: Pillow would hand EPS to Ghostscript and open PDF and ICO.
    (folder / "eps.png").write_bytes(EPS)
    (folder / "pdf.png").write_bytes(saved_as("PDF"))
    (folder / "ico.png").write_bytes(saved_as("ICO"))
    return {"empty.png": "cannot read", "truncated.png": "cannot read", "text.png": "cannot read",
            "folder.png": "directory", "huge.png": "limit", "missing.png": "not found",
            "eps.png": "not a PNG, JPEG", "pdf.png": "not a PNG, JPEG", "ico.png": "not a PNG, JPEG"}  # fmt: skip


def test_odd_but_valid_images_decode_to_upright_rgb(tmp_path: Path) -> None:
    for name, size in _readable(tmp_path).items():
        image = load_image(tmp_path / name)
        assert image.mode == "RGB" and image.size == size, name
    gray16 = np.asarray(load_image(tmp_path / "gray16.png"))[..., 0]
    assert gray16.max() > 100 and gray16.min() == 0  # scaled from 16 bits, not clipped to white
    assert np.asarray(load_image(tmp_path / "rgba.png"))[0, 0].tolist() == [200, 30, 30]
    assert np.asarray(load_image(tmp_path / "animated.gif"))[0, 0, 0] > 150  # the first (red) frame


def test_broken_files_give_one_clean_error_naming_the_file(tmp_path: Path) -> None:
    for name, reason in _unreadable(tmp_path).items():
        with pytest.raises(ImageReadError, match=reason) as error:
            load_image(tmp_path / name)
        assert name in str(error.value)
    with pytest.raises(ImageReadError, match="over the limit of 0.001 MP"):
        load_image(tmp_path / "whole.png", max_pixels=1000)


def test_an_image_object_of_a_format_outside_the_list_is_refused(tmp_path: Path) -> None:
    (tmp_path / "icon.ico").write_bytes(saved_as("ICO"))
    with (
        Image.open(tmp_path / "icon.ico") as icon,
        pytest.raises(ImageReadError, match="cannot read an image in ICO format"),
    ):
        as_image(icon)
    with Image.open(io.BytesIO(saved_as("PNG"))) as png:
        assert as_image(png).size == (16, 16)


def test_the_cli_answers_every_file_without_a_traceback(
    trained_sat: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    readable = _readable(tmp_path)
    assert main(["captcha", "read", str(trained_sat), *(str(tmp_path / n) for n in readable)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(readable)
    for name in _unreadable(tmp_path):
        assert main(["captcha", "read", str(trained_sat), str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("imcaption: error: ") and name in err and "Traceback" not in err


def _png_variants(folder: Path) -> dict[str, bool]:
    """PNGs of a noisy picture in several forms, and whether libpng's fast path may take each."""
    pixels = np.random.default_rng(5).integers(0, 256, (40, 90, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    image.save(folder / "rgb.png")
    image.save(folder / "rgb_trns.png", transparency=(0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(folder / "rgb_sideways.png", exif=exif)
    image.convert("RGBA").save(folder / "rgba.png")
    image.convert("L").save(folder / "gray.png")
    image.convert("P").save(folder / "palette.png")
    (folder / "rgb16.png").write_bytes(imagecodecs.png_encode(pixels.astype(np.uint16) * 257))
    return {"rgb.png": True, "rgb_trns.png": False, "rgb_sideways.png": False, "rgba.png": False,
            "gray.png": False, "palette.png": False, "rgb16.png": False}  # fmt: skip


def test_the_png_fast_path_gives_pillows_pixels_or_steps_aside(tmp_path: Path) -> None:
    size = ImageSize(24, 48)
    for name, fast in _png_variants(tmp_path).items():
        data = (tmp_path / name).read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            pixels = png_pixels(image, data)
        assert (pixels is not None) == fast, name
        if fast:
            np.testing.assert_array_equal(pixels, np.asarray(load_image(tmp_path / name)))
            np.testing.assert_array_equal(to_model_input(pixels, size),
                                          to_model_input(load_image(tmp_path / name), size))  # fmt: skip
    # A file libpng refuses (cut short) leaves the verdict to Pillow, which names the problem.
    data = (tmp_path / "rgb.png").read_bytes()[:-200]
    with Image.open(io.BytesIO(data)) as image:
        assert png_pixels(image, data) is None


def _rss_mb() -> float:
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024


def test_damaged_pngs_never_reach_libpng_which_leaks_on_them() -> None:
    from imcaption.images import whole_png

    pixels = np.random.default_rng(1).integers(0, 256, (320, 600, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    whole = buffer.getvalue()
    flipped = bytearray(whole)
    flipped[len(whole) // 2] ^= 0xFF
    damaged = {"truncated": whole[: len(whole) // 2], "a flipped byte": bytes(flipped), "no IEND": whole[:-12]}
    assert whole_png(whole) and not any(whole_png(data) for data in damaged.values())
    before = _rss_mb()
    for _ in range(150):  # each one that reached libpng kept about 280 KB: 40 MB here
        for data in damaged.values():
            with Image.open(io.BytesIO(data)) as image:
                assert png_pixels(image, data) is None
    assert _rss_mb() - before < 15
