import os
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imcaption.captcha.fonts import FACES, FAMILIES
from imcaption.captcha.generator import (
    STYLES,
    TEMP_SUFFIX,
    CaptchaStyle,
    FontCache,
    check_style,
    dataset_manifest,
    generate_dataset,
    render_index,
)
from imcaption.captcha.vocabulary import default_vocabulary
from imcaption.cli import main
from imcaption.cli.captcha import STYLE_HELP

LABEL_LINE = re.compile(r"^a[0-9]+ [a-z]{3,5}$")


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.is_file()}


def test_default_vocabulary_is_the_reference_list() -> None:
    words = default_vocabulary()
    reference = Path(__file__).parents[1].parent / "shared" / "reference" / "words.txt"
    assert len(words) == 2500
    if reference.is_file():
        assert words == [w for w in reference.read_text().split() if w]
    assert {"null", "true", "none", "www"} <= set(words)


def test_cli_output_is_identical_for_any_worker_count(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["captcha", "generate", str(one), "--count", "140", "--seed", "3", "--workers", "1", "--quiet"]) == 0
    assert main(["captcha", "generate", str(two), "--count", "140", "--seed", "3", "--workers", "2", "--quiet"]) == 0
    files = _files(one)
    assert files == _files(two)
    labels = (one / "spec_train_val.txt").read_text().splitlines()
    tests = (one / "test_labels.txt").read_text().splitlines()
    assert len(labels) == 120 and len(tests) == 20
    assert all(LABEL_LINE.match(line) for line in labels + tests)
    assert [line.split()[0] for line in labels + tests] == [f"a{i}" for i in range(140)]
    vocabulary = set(default_vocabulary())
    assert all(line.split()[1] in vocabulary for line in labels + tests)
    assert sum(name.endswith(".png") for name in files) == 140


def test_another_seed_gives_other_images(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "a", default_vocabulary(), count=7, seed=1, workers=1, progress=False)
    generate_dataset(tmp_path / "b", default_vocabulary(), count=7, seed=2, workers=1, progress=False)
    assert (tmp_path / "a" / "a0.png").read_bytes() != (tmp_path / "b" / "a0.png").read_bytes()


def test_rerun_after_interrupt_writes_only_missing_files(tmp_path: Path) -> None:
    root = tmp_path / "data"
    generate_dataset(root, default_vocabulary(), count=14, seed=5, workers=1, progress=False)
    reference = _files(root)
    # Simulate an interrupt: some images never written, one half-written temporary left behind.
    for index in (3, 9, 13):
        (root / f"a{index}.png").unlink()
    (root / f"a9.png{TEMP_SUFFIX}").write_bytes(b"\x89PNG half")
    kept = {p.name: p.stat().st_mtime_ns for p in root.glob("a*.png")}
    drawn = generate_dataset(root, default_vocabulary(), count=14, seed=5, workers=2, progress=False)
    assert drawn == 3
    assert _files(root) == reference
    assert {name: (root / name).stat().st_mtime_ns for name in kept} == kept
    assert not list(root.glob(f"*{TEMP_SUFFIX}"))


def test_rendered_images_look_like_the_real_dataset() -> None:
    vocabulary = default_vocabulary()
    fonts = FontCache()
    faces: Counter[str] = Counter()
    style = CaptchaStyle()
    for index in range(200):
        rendered = render_index(vocabulary, 0, index, fonts, style)
        image = rendered.image
        assert image.size == (600, 320) and image.mode == "RGB"
        assert len(rendered.letter_boxes) == len(rendered.word)
        for left, top, right, bottom in rendered.letter_boxes:
            assert 0 <= left < right <= 600 and 0 <= top < bottom <= 320
        lefts = [box[0] for box in rendered.letter_boxes]
        assert lefts == sorted(lefts), "letters run left to right"
        faces[rendered.face] += 1
    assert set(faces) == {"sans", "marker", "connected-script", "calligraphic"}
    assert 70 <= faces["sans"] <= 130  # about half, as in the real data
    assert min(faces.values()) > 15


def _border_ink(style: CaptchaStyle, count: int = 30) -> float:
    """Share of ink (any channel below 200) in the 6-px band along the border, as likeness.py measures it."""
    fonts, shares = FontCache(), []
    for index in range(count):
        ink = (np.asarray(render_index(default_vocabulary(), 0, index, fonts, style).image) < 200).any(axis=2)
        band = np.ones_like(ink)
        band[6:-6, 6:-6] = False
        shares.append(ink[band].mean())
    return float(np.mean(shares))


def test_faithful_strokes_mostly_stay_inside_the_image_unlike_v1() -> None:
    # Real images: about 1.2-1.3 % border-band ink, most of it speckle; v1's strokes ran off the image.
    faithful, v1 = _border_ink(STYLES["faithful"]), _border_ink(STYLES["v1"])
    assert faithful < 0.025 and v1 > 0.04


def test_styles_draw_only_their_own_faces_and_wide_covers_every_family() -> None:
    fonts = FontCache()
    v1 = {render_index(default_vocabulary(), 0, i, fonts, STYLES["v1"]).face for i in range(40)}
    assert v1 == {"brush-script", "handwriting", "rounded-heavy", "italic-hand"}
    wide = STYLES["wide"]
    assert len(wide.faces) >= 15 and {FACES[face].family for face in wide.faces} == set(FAMILIES)
    for face in wide.faces:  # every face is installed and draws every letter
        font = fonts.get(face, 60)
        assert all(font.getbbox(letter)[2] > font.getbbox(letter)[0] for letter in "abcdefghijklmnopqrstuvwxyz")


def test_wide_draws_its_faithful_share_in_the_faithful_style() -> None:
    fonts, words = FontCache(), default_vocabulary()
    faithful_faces = set(CaptchaStyle().faces)

    def faces(share: float) -> list[str]:
        style = replace(STYLES["wide"], faithful_share=share)
        return [render_index(words, 0, i, fonts, style).face for i in range(60)]

    assert set(faces(1.0)) <= faithful_faces
    broad = faces(0.0)
    assert len(set(broad) - faithful_faces) >= 5
    half = faces(STYLES["wide"].faithful_share)
    # Half the images faithful, and the broad half still draws real faces about 45 % of the time.
    assert 0.55 < sum(face in faithful_faces for face in half) / len(half) < 0.95
    small = replace(STYLES["wide"], width=300, height=160, faithful_share=1.0)
    assert render_index(words, 0, 0, fonts, small).image.size == (300, 160)  # its faithful images keep its size
    with pytest.raises(ValueError, match="faithful_share"):
        check_style(replace(CaptchaStyle(), faithful_share=1.5))
    # A manifest names the share only where a style mixes, so folders generated before it existed still match.
    assert "faithful_share" not in dataset_manifest(words, 7, 0, CaptchaStyle())["style"]
    assert dataset_manifest(words, 7, 0, STYLES["wide"])["style"]["faithful_share"] == 0.5


def test_letters_are_large_colored_and_noise_is_present() -> None:
    rendered = render_index(default_vocabulary(), 0, 7, FontCache())
    heights = [bottom - top for _, top, _, bottom in rendered.letter_boxes]
    assert max(heights) >= 40
    pixels = np.asarray(rendered.image).reshape(-1, 3).astype(int)
    non_white = pixels[(pixels < 250).any(axis=1)]
    # Many distinct colors: letters, strokes and speckle each get their own.
    assert len({tuple(p) for p in non_white[::7]}) > 200
    quiet = render_index(default_vocabulary(), 0, 7, FontCache(), CaptchaStyle(noise=False))
    assert (np.asarray(quiet.image) < 250).any(axis=2).mean() < (np.asarray(rendered.image) < 250).any(axis=2).mean()


def test_png_files_are_8_bit_rgb_and_lossless(tmp_path: Path) -> None:
    generate_dataset(tmp_path, default_vocabulary(), count=7, seed=0, workers=1, progress=False)
    drawn = render_index(default_vocabulary(), 0, 0, FontCache()).image
    with Image.open(tmp_path / "a0.png") as image:
        assert image.format == "PNG" and image.mode == "RGB" and image.size == (600, 320)
        assert np.array_equal(np.asarray(image), np.asarray(drawn))  # the fast encoder keeps every pixel
    assert not any(name.endswith(TEMP_SUFFIX) for name in os.listdir(tmp_path))


def test_every_style_is_offered_by_the_cli_and_bad_styles_are_refused(tmp_path: Path) -> None:
    assert set(STYLE_HELP) == set(STYLES)
    for style in STYLES.values():
        check_style(style)
    with pytest.raises(ValueError, match="unknown faces"):
        generate_dataset(tmp_path, default_vocabulary(), count=7, style=replace(CaptchaStyle(), faces=("comic",)))
    with pytest.raises(ValueError, match="2 face weights for 4 faces"):
        check_style(replace(CaptchaStyle(), face_weights=(1.0, 1.0)))
    assert not any(tmp_path.iterdir())  # refused before anything was written
