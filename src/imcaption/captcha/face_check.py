"""The legibility check: does a face draw the 26 lowercase letters as Latin lowercase letters a reader can tell
apart? It renders each letter (and the capitals, and a codepoint no font has) and refuses

- faces missing letters: a letter drawn as the font's .notdef box (the glyph of the codepoint no font has) or not
  at all; most letters missing is a non-Latin face;
- all-caps faces: lowercase letters drawn as capitals, full size or small (the shape of `a` matches `A`);
- symbol and dingbat faces: letters without the lowercase profile of Latin text (ascenders above the x-height in
  b d h k l, descenders below the baseline in g p q y);
- faces whose letters are too alike: two different letters with (nearly) the same bitmap.

`python -m imcaption.captcha.face_build --check` runs it over the candidate faces and prints the counts;
face_build.py stores the verdicts, with FACE_CHECK_VERSION, in universal_faces.json (face_list.py reads it).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["FACE_CHECK_VERSION", "CheckResult", "LetterBitmaps", "check_face", "lowercase_profile", "render_letters"]

# Raise when what the check refuses changes: the stored face list names the version it was computed with.
FACE_CHECK_VERSION = 1

LOWERCASE = string.ascii_lowercase
# A noncharacter of the last plane's private-use area: mapped by no font, so every font draws its .notdef glyph.
MISSING_CODEPOINT = "\U0010fffd"
EM = 64  # render size in px: large enough for the shapes, small enough to check hundreds of faces in seconds
NORMALIZED = 24  # side of the square a letter's shape is scaled into to compare shapes of different sizes
X_HEIGHT_LETTERS = "acemnorsuvwxz"
ASCENDER_LETTERS = "bdhkl"
DESCENDER_LETTERS = "gpqy"
# Thresholds, in ems: a Latin lowercase's ascenders rise and its descenders drop well past the x-height letters.
MIN_ASCENDER = 0.1
MIN_DESCENDER = 0.08
MIN_LETTERS_FOR_LATIN = 13  # fewer letters drawn: a face for another script
SHAPE_MATCH = 0.5  # intersection over union of two normalized shapes drawn as the same letter
# Lowercase letters shaped as their own capitals: a regular face has up to about 13 (c o s v w x z k p u ...), an
# all-caps face nearly 26; a face without the lowercase profile and this many draws small capitals.
ALL_CAPS_MATCHES = 20
SMALL_CAPS_MATCHES = 8
ALIKE = 0.93  # intersection over union of two letters' bitmaps (at the baseline) too close to tell apart


@dataclass(frozen=True)
class Glyph:
    """One character's ink at EM px: its mask, cropped, and where its box lies relative to the baseline."""

    mask: np.ndarray  # bool, cropped to ink; empty (0 x 0) when nothing is drawn
    top: int  # ink top, px above the baseline (positive up)
    bottom: int  # ink bottom, px above the baseline (negative below)

    @property
    def empty(self) -> bool:
        return self.mask.size == 0


@dataclass(frozen=True)
class LetterBitmaps:
    lower: dict[str, Glyph]
    upper: dict[str, Glyph]
    notdef: Glyph


@dataclass(frozen=True)
class CheckResult:
    kept: bool
    reason: str  # "" when kept; else one line: what is wrong and which letters show it


def _glyph(font: ImageFont.FreeTypeFont, char: str) -> Glyph:
    # A canvas of 4 x 3 em with the baseline at 2 em holds swashes and deep descenders of script faces.
    baseline = 2 * EM
    canvas = Image.new("L", (4 * EM, 3 * EM), 0)
    ImageDraw.Draw(canvas).text((EM, baseline), char, font=font, fill=255, anchor="ls")
    ink = np.asarray(canvas) > 127
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if not len(rows):
        return Glyph(np.zeros((0, 0), bool), 0, 0)
    mask = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return Glyph(mask, baseline - int(rows[0]), baseline - int(rows[-1]) - 1)


def render_letters(font: ImageFont.FreeTypeFont) -> LetterBitmaps:
    """The face's lowercase and capital letters and its .notdef glyph, at EM px (`font` must be loaded at EM)."""
    return LetterBitmaps(
        lower={c: _glyph(font, c) for c in LOWERCASE},
        upper={c: _glyph(font, c.upper()) for c in LOWERCASE},
        notdef=_glyph(font, MISSING_CODEPOINT),
    )


def _normalized(glyph: Glyph) -> np.ndarray:
    """The glyph's shape, its aspect kept, centered in a NORMALIZED-px square: a small capital matches a capital."""
    height, width = glyph.mask.shape
    side = max(height, width)
    square = np.zeros((side, side), np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    square[top : top + height, left : left + width] = glyph.mask * 255
    scaled = Image.fromarray(square).resize((NORMALIZED, NORMALIZED), Image.Resampling.BOX)
    return np.asarray(scaled) > 96


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _same_bitmap(a: Glyph, b: Glyph) -> float:
    """How alike two glyphs are as drawn: masks laid over each other at the baseline, left edges together."""
    height = max(a.top, b.top) - min(a.bottom, b.bottom)
    width = max(a.mask.shape[1], b.mask.shape[1])
    canvases = []
    for glyph in (a, b):
        canvas = np.zeros((height, width), bool)
        row = max(a.top, b.top) - glyph.top
        canvas[row : row + glyph.mask.shape[0], : glyph.mask.shape[1]] = glyph.mask
        canvases.append(canvas)
    return _iou(*canvases)


def _missing(bitmaps: LetterBitmaps) -> list[str]:
    notdef = bitmaps.notdef
    return [c for c, glyph in bitmaps.lower.items() if glyph.empty or (not notdef.empty and
            glyph.top == notdef.top and np.array_equal(glyph.mask, notdef.mask))]  # fmt: skip


def _capital_shaped(bitmaps: LetterBitmaps) -> list[str]:
    """The lowercase letters shaped as their own capital: nearer to it than to any other capital. A regular
    lowercase is so only where the two look alike anyway (c o s v w x z, often k p u y); a small-caps face, even
    a hand-drawn one whose small capitals are other drawings than its capitals, for most letters."""
    capitals = {c: _normalized(glyph) for c, glyph in bitmaps.upper.items() if not glyph.empty}
    shaped = []
    for c in LOWERCASE:
        if c not in capitals:
            continue
        shape = _normalized(bitmaps.lower[c])
        likeness = {other: _iou(shape, capital) for other, capital in capitals.items()}
        if max(likeness, key=likeness.__getitem__) == c and likeness[c] >= SHAPE_MATCH:
            shaped.append(c)
    return shaped


def lowercase_profile(bitmaps: LetterBitmaps) -> tuple[float, float]:
    """How far, in ems, ascenders rise above the x-height letters and descenders drop below their baseline."""
    lower = bitmaps.lower
    x_top = np.median([lower[c].top for c in X_HEIGHT_LETTERS])
    x_bottom = np.median([lower[c].bottom for c in X_HEIGHT_LETTERS])
    ascender = np.median([lower[c].top for c in ASCENDER_LETTERS]) - x_top
    descender = x_bottom - np.median([lower[c].bottom for c in DESCENDER_LETTERS])
    return float(ascender / EM), float(descender / EM)


def _alike_pairs(bitmaps: LetterBitmaps) -> list[str]:
    ink = {c: int(glyph.mask.sum()) for c, glyph in bitmaps.lower.items()}
    # Two masks' intersection over union is at most the smaller ink count over the larger: most pairs are
    # ruled out by their counts alone.
    return [f"{a}={b}" for a, b in combinations(LOWERCASE, 2)
            if min(ink[a], ink[b]) >= ALIKE * max(ink[a], ink[b])
            and _same_bitmap(bitmaps.lower[a], bitmaps.lower[b]) >= ALIKE]  # fmt: skip


def check_face(font: ImageFont.FreeTypeFont) -> CheckResult:
    """Keep or refuse a face (`font` loaded at EM px, its variation set), with the reason for a refusal."""
    bitmaps = render_letters(font)
    missing = _missing(bitmaps)
    if len(missing) > len(LOWERCASE) - MIN_LETTERS_FOR_LATIN:
        return CheckResult(False, f"non-Latin: draws {len(LOWERCASE) - len(missing)} of the 26 lowercase letters")
    if missing:
        return CheckResult(False, f"missing glyphs: {''.join(missing)}")
    capitals = len(_capital_shaped(bitmaps))
    ascender, descender = lowercase_profile(bitmaps)
    flat = ascender < MIN_ASCENDER or descender < MIN_DESCENDER
    if capitals >= ALL_CAPS_MATCHES or (flat and capitals >= SMALL_CAPS_MATCHES):
        return CheckResult(False, f"all caps: {capitals} of 26 lowercase letters shaped as their capitals")
    if flat:
        return CheckResult(
            False, f"symbol: no lowercase profile (ascenders {ascender:+.2f} em, descenders {descender:+.2f} em)"
        )
    alike = _alike_pairs(bitmaps)
    if alike:
        return CheckResult(False, f"letters too alike: {' '.join(alike)}")
    return CheckResult(True, "")
