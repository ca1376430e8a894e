"""The universal style (issue 29): its face list and the legibility check behind it, the family weights, the
variation beyond the face, images as pure functions of (seed, index), and the face-level split that keeps a fifth
of the faces for the unseen-faces validation set."""

from __future__ import annotations

import re
import string
import tomllib
from collections import Counter
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from packaging.version import Version
from PIL import Image, ImageDraw, ImageFont

from imcaption.captcha.dataset import CaptchaDataset
from imcaption.captcha.face_build import check_faces, markdown, report
from imcaption.captcha.face_build import main as face_build
from imcaption.captcha.face_check import EM, FACE_CHECK_VERSION, check_face
from imcaption.captcha.face_list import FAMILY_SHARES, UNIVERSAL_FAMILIES, face_list
from imcaption.captcha.face_sources import CANDIDATES
from imcaption.captcha.fonts import FACES, FontFace, FontMissingError, face_path, font_path, missing_packages
from imcaption.captcha.generator import STYLES, FontCache, dataset_manifest, face_for_index, render_index
from imcaption.captcha.styles import UNIVERSAL_STYLE, UNSEEN_FACES_STYLE, universal_face_split
from imcaption.captcha.variation import LetterShape, shape_letter, stroke_width
from imcaption.captcha.vocabulary import default_vocabulary
from imcaption.cli import main
from imcaption.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[1]
FAITHFUL = STYLES["faithful"]
# The faithful style's four faces stand for the real families they imitate.
FAITHFUL_FAMILY = {"sans": "sans", "marker": "hand", "connected-script": "script", "calligraphic": "calligraphic"}


def _family(face: str) -> str:
    listed = face_list().by_name
    return listed[face].family if face in listed else FAITHFUL_FAMILY[face]


def test_the_face_list_has_hundreds_of_legible_faces_of_every_family() -> None:
    listed = face_list()
    kept = listed.kept
    assert listed.check_version == FACE_CHECK_VERSION  # recomputed with the check as it is
    assert len(kept) >= 250 and {face.family for face in kept} == set(UNIVERSAL_FAMILIES)
    assert len({face.distribution for face in kept}) >= 100
    assert len({face.name for face in listed.faces}) == len(listed.faces)
    assert all(face.licence and face.licence != "unknown" for face in kept)
    # Every candidate package is in the list, at its pinned version, and nothing else.
    assert {face.distribution for face in listed.faces} == set(CANDIDATES)
    assert all(face.version == CANDIDATES[face.distribution].version for face in listed.faces)
    assert all(face.family == CANDIDATES[face.distribution].family for face in listed.faces)
    reasons = Counter(face.refused.split(":")[0] for face in listed.faces if face.refused)
    assert set(reasons) <= {"non-Latin", "missing glyphs", "all caps", "symbol", "letters too alike"}


def test_every_face_package_is_pinned_in_an_extra_that_dev_installs() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pins = dict(re.fullmatch(r"([a-z0-9-]+)==(\S+)", r).groups() for r in extras["generate"] + extras["faces"]
                if "==" in r)  # fmt: skip
    for distribution, package in CANDIDATES.items():
        assert Version(pins[distribution]) == Version(package.version), distribution
        assert Version(metadata.version(distribution)) == Version(package.version), f"{distribution} installed"
    fonts = {name for name in pins if name.startswith("font")}
    assert fonts <= set(CANDIDATES) | {face.distribution for face in FACES.values()}
    assert "imcaption[generate]" in extras["faces"]
    assert any("faces" in r for r in extras["dev"] if r.startswith("imcaption["))


def test_the_check_rerun_on_a_few_faces_gives_the_stored_verdicts() -> None:
    listed = face_list()
    by_name = {face.name: face for face in listed.faces}
    kept = ["open-sans:OpenSans[wdth,wght]@400", "dancing-script:DancingScript[wght]@400",
            "great-vibes:GreatVibes-Regular", "zeyada:Zeyada", "space-mono:SpaceMono-Regular"]  # fmt: skip
    refused = ["bebas-neue:BebasNeue-Regular", "amatic-sc:AmaticSC-Regular", "anton:Anton-Regular"]
    rechecked = {face.name: face.refused for face in check_faces(by_name[name] for name in kept + refused)}
    assert all(rechecked[name] == "" for name in kept)
    assert rechecked["bebas-neue:BebasNeue-Regular"].startswith("all caps")  # capitals for lowercase
    assert rechecked["amatic-sc:AmaticSC-Regular"].startswith("all caps")  # small capitals, hand-drawn
    assert rechecked["anton:Anton-Regular"] == "letters too alike: b=h"
    assert all(rechecked[name] == by_name[name].refused for name in refused)


def test_the_check_refuses_a_face_missing_letters(tmp_path: Path) -> None:
    """PT Sans without q and z (cut with fontTools, which the train extra brings): both draw its .notdef glyph."""
    subset = pytest.importorskip("fontTools.subset")
    options = subset.Options()
    options.notdef_outline = True  # the box a missing letter draws
    font = subset.load_font(str(font_path("sans-pt")), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=string.ascii_letters.replace("q", "").replace("z", ""))
    subsetter.subset(font)
    subset.save_font(font, str(tmp_path / "partial.ttf"), options)
    assert check_face(ImageFont.truetype(str(tmp_path / "partial.ttf"), EM)).reason == "missing glyphs: qz"
    assert check_face(ImageFont.truetype(str(font_path("sans-pt")), EM)).kept


def test_the_check_refuses_symbol_and_non_latin_faces() -> None:
    """Faces of another package (matplotlib ships TeX's symbol fonts and STIX's size variants, which draw no
    letters): a symbol face draws something for every letter, but not lowercase Latin."""
    matplotlib = pytest.importorskip("matplotlib")
    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    assert check_face(ImageFont.truetype(str(fonts / "cmsy10.ttf"), EM)).reason.startswith("symbol")
    assert check_face(ImageFont.truetype(str(fonts / "cmex10.ttf"), EM)).reason.startswith("symbol")
    assert check_face(ImageFont.truetype(str(fonts / "STIXSizOneSymReg.ttf"), EM)).reason.startswith("non-Latin")
    assert check_face(ImageFont.truetype(str(fonts / "DejaVuSans.ttf"), EM)).kept


def test_the_report_and_the_docs_come_from_the_face_list(capsys: pytest.CaptureFixture[str]) -> None:
    text = report(face_list().faces)
    assert re.search(r"^calligraphic\s+3\s+0\s+3$", text, re.M)
    assert "anton:Anton-Regular (display): letters too alike: b=h" in text
    assert face_build([]) == 0 and capsys.readouterr().out.strip() == text
    docs = (ROOT / "docs" / "faces_universal.md").read_text()
    assert docs == markdown(face_list(), universal_face_split()), "regenerate with face_build --markdown"
    with Image.open(ROOT / "docs" / "faces_universal.png") as sheet:
        assert sheet.width >= 1200


def test_families_keep_their_shares() -> None:
    """By weight, each family draws its share of FAMILY_SHARES (less the held-out families'); drawn, the real
    families' faces with the faithful share's keep plain sans about half and the other three about a sixth."""
    weights: Counter[str] = Counter()
    for face, weight in zip(UNIVERSAL_STYLE.faces, UNIVERSAL_STYLE.face_weights or (), strict=True):
        weights[_family(face)] += weight
    total = sum(weights.values())
    present = sum(FAMILY_SHARES[family] for family in weights)
    assert {family: round(w / total, 6) for family, w in weights.items()} == {
        family: round(FAMILY_SHARES[family] / present, 6) for family in weights
    }
    words = default_vocabulary()
    drawn = Counter(_family(face_for_index(words, 0, i, UNIVERSAL_STYLE)) for i in range(1500))
    assert 0.38 < drawn["sans"] / 1500 < 0.56
    assert all(0.1 < drawn[family] / 1500 < 0.24 for family in ("hand", "script", "calligraphic"))
    assert sum(drawn[family] for family in ("serif", "slab", "mono", "display")) / 1500 < 0.2


def test_no_held_out_face_is_ever_drawn_in_training_images() -> None:
    kept = face_list().by_name
    split = universal_face_split()
    held, trained = set(UNSEEN_FACES_STYLE.faces), set(UNIVERSAL_STYLE.faces)
    assert held == set(split.held_out) and not held & trained and held | trained == set(kept)
    assert 0.17 < len(held) / len(kept) < 0.23
    # Whole typefaces only, one whole family among them, and never the faithful style's faces.
    assert not {kept[f].distribution for f in held} & {kept[f].distribution for f in trained}
    assert split.whole_families and all(kept[f].family not in split.whole_families for f in trained)
    assert not {FACES[f].distribution for f in FAITHFUL.faces} & {kept[f].distribution for f in held}
    assert {kept[f].family for f in held} == set(UNIVERSAL_FAMILIES)  # every family is read unseen
    words = default_vocabulary()
    for seed in (0, 7):  # the faces of every image of a training set, train, val and test splits alike
        faces = {face_for_index(words, seed, i, UNIVERSAL_STYLE) for i in range(1500)}
        assert not faces & held and faces <= trained | set(FAITHFUL.faces)
        assert len(faces) > 250
    unseen = {face_for_index(words, 0, i, UNSEEN_FACES_STYLE) for i in range(600)}
    assert unseen <= held and len(unseen) > 40


def test_images_are_pure_functions_of_seed_and_index() -> None:
    words = default_vocabulary()
    first = render_index(words, 4, 12, FontCache(), UNIVERSAL_STYLE)
    again = render_index(words, 4, 12, FontCache(capacity=1), UNIVERSAL_STYLE)  # evicting fonts changes nothing
    assert first.image.tobytes() == again.image.tobytes() and first.face == again.face
    assert first.face == face_for_index(words, 4, 12, UNIVERSAL_STYLE)
    other = render_index(words, 4, 13, FontCache(), UNIVERSAL_STYLE)
    assert other.image.tobytes() != first.image.tobytes()
    # The variation is drawn after the word, the face and the layout: without it, the same letters, unvaried.
    plain = render_index(words, 4, 12, FontCache(), replace(UNIVERSAL_STYLE, variation=None))
    assert (plain.word, plain.face) == (first.word, first.face)
    assert plain.image.tobytes() != first.image.tobytes()


def _letter(char: str = "n", size: int = 100) -> Image.Image:
    font = FontCache().get("sans", size)
    left, top, right, bottom = font.getbbox(char)
    mask = Image.new("L", (right - left + 8, bottom - top + 8), 0)
    ImageDraw.Draw(mask).text((4 - left, 4 - top), char, font=font, fill=255)
    return mask


def _lean(mask: Image.Image) -> float:
    """How far right the ink of the letter's top third lies of its bottom third's, in px."""
    ink = np.asarray(mask.crop(mask.getbbox())) > 127
    third = ink.shape[0] // 3
    return float(np.nonzero(ink[:third])[1].mean() - np.nonzero(ink[-third:])[1].mean())


def test_variation_thins_thickens_slants_and_warps_letters() -> None:
    letter = _letter()
    still = np.zeros((4, 4, 2))
    plain = shape_letter(letter, LetterShape(0.0, 1.0, 2.5, still))
    width = stroke_width(plain)
    assert np.array_equal(np.asarray(plain.crop(plain.getbbox())), np.asarray(letter.crop(letter.getbbox())))
    thin = shape_letter(letter, LetterShape(0.0, 0.4, 2.5, still))
    heavy = shape_letter(letter, LetterShape(0.0, 1.4, 2.5, still))
    assert 2.5 <= stroke_width(thin) < 0.75 * width and stroke_width(heavy) > 1.2 * width
    # Slanted: the top of the letter moves right of its bottom (left, back-slanted), by the shear times the
    # distance between the two thirds' middles, two thirds of the letter's 55 px.
    leaning = _lean(shape_letter(letter, LetterShape(0.3, 1.0, 2.5, still))) - _lean(plain)
    back = _lean(shape_letter(letter, LetterShape(-0.3, 1.0, 2.5, still))) - _lean(plain)
    assert 8 < leaning < 14 and -14 < back < -8
    warped = shape_letter(letter, LetterShape(0.0, 1.0, 2.5, np.random.default_rng(0).normal(0, 0.04, (4, 4, 2))))
    margin = (warped.width - plain.width) // 2  # the room made for the moves, on each side
    a = np.asarray(warped.crop((margin, margin, margin + plain.width, margin + plain.height))) > 127
    b = np.asarray(plain) > 127
    overlap = (a & b).sum() / (a | b).sum()
    assert 0.4 < overlap < 0.95  # moved, and still the same letter


def test_a_missing_face_package_is_an_error_that_names_it() -> None:
    face = FontFace("fontpkg-not-installed-here", "NotInstalled-Regular.ttf", "sans", extra="faces")
    with pytest.raises(FontMissingError, match=r"fontpkg-not-installed-here.*pip install 'imcaption\[faces\]'"):
        face_path("not-installed", face)
    with pytest.raises(FontMissingError, match="fontpkg-not-installed-here"):
        missing_packages({"sans": FACES["sans"], "not-installed": face})
    missing_packages({name: FACES[name] for name in FAITHFUL.faces})  # installed: no error


def test_generate_writes_the_universal_set_and_the_unseen_faces_set(tmp_path: Path) -> None:
    out = tmp_path / "universal"
    argv = ["captcha", "generate", str(out), "--count", "7", "--seed", "2", "--style", "universal",
            "--unseen-faces", "7", "--workers", "1", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    words, held = default_vocabulary(), set(UNSEEN_FACES_STYLE.faces)
    for folder, style, drawn_in_held in ((out, "universal", False), (out / "unseen_faces", "unseen-faces", True)):
        manifest = read_manifest(folder)
        assert manifest and manifest["complete"] and manifest["style"]["name"] == style
        assert manifest["face_list_sha256"] == face_list().sha256 and "variation" in manifest["style"]
        assert [face_for_index(words, 2, i, STYLES[style]) in held for i in range(7)] == [drawn_in_held] * 7
        assert len(CaptchaDataset.open(folder).split("val")) == 1
    faithful = dataset_manifest(words, 7, 0, FAITHFUL)  # older styles' manifests are as they were
    assert "face_list_sha256" not in faithful and "variation" not in faithful["style"]
    assert main(["captcha", "generate", str(tmp_path / "f"), "--count", "7", "--unseen-faces", "7", "--quiet"]) == 2
