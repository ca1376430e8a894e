"""Variation beyond the face, for styles that set `CaptchaStyle.variation` (the universal one): each letter's
stroke made thinner or heavier, slanted, warped by a mild elastic distortion, and the word's baseline bent.

The draws are made from the image's own generator, after the layout's draws and in a fixed order (the word's
slant, stroke scale and baseline wave, then each letter's slant and warp), so that an image stays a pure function
of (seed, index, style). A style without variation makes none of these draws: its images are unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

__all__ = ["LetterShape", "LetterVariation", "draw_shapes", "shape_letter"]


@dataclass(frozen=True)
class LetterVariation:
    """How much the letters vary; the defaults are the universal style's."""

    # The word's slant, a shear of up to tan 17 degrees either way (upright and italic hands, back-slanted
    # markers), and each letter's own slant on top of it.
    slant: float = 0.3
    letter_slant: float = 0.08
    # The stroke width's factor for the whole word: thin (a felt-tip marker's 4 px at the em sizes drawn) to a
    # little heavier than the face; strokes are never thinned below min_stroke px.
    stroke_scale: tuple[float, float] = (0.45, 1.25)
    min_stroke: float = 2.5
    # Elastic distortion: a grid of elastic_cells x elastic_cells cells over each letter whose corners move by
    # a normal draw of this standard deviation, in shares of the letter's height: mild, the letter stays itself.
    elastic: float = 0.035
    elastic_cells: int = 3
    # The baseline bends along a sine of up to this amplitude, in ems, over half to one and a half periods.
    baseline_wave: float = 0.12


@dataclass(frozen=True)
class LetterShape:
    """One letter's draws."""

    shear: float  # horizontal shift per px of height; positive leans right
    stroke_scale: float
    min_stroke: float
    displacement: np.ndarray  # (cells + 1, cells + 1, 2) grid corner moves, in shares of the letter's height


def draw_shapes(
    rng: np.random.Generator, variation: LetterVariation, count: int
) -> tuple[list[LetterShape], np.ndarray]:
    """The shapes of a word's `count` letters and the baseline's offsets at each letter, in ems (down positive)."""
    slant = rng.uniform(-variation.slant, variation.slant)
    stroke_scale = rng.uniform(*variation.stroke_scale)
    amplitude = rng.uniform(0, variation.baseline_wave)
    phase, periods = rng.uniform(0, 2 * math.pi), rng.uniform(0.5, 1.5)
    letter_slants = rng.uniform(-variation.letter_slant, variation.letter_slant, size=count)
    corners = variation.elastic_cells + 1
    moves = rng.normal(0, variation.elastic, size=(count, corners, corners, 2))
    shapes = [LetterShape(float(slant + own), float(stroke_scale), variation.min_stroke, move)
              for own, move in zip(letter_slants, moves, strict=True)]  # fmt: skip
    positions = np.arange(count) / max(count, 1)
    wave = amplitude * np.sin(phase + 2 * math.pi * periods * positions)
    return shapes, wave


def stroke_width(mask: Image.Image) -> float:
    """The mean stroke width of a letter mask, in px: twice its ink area over its outline's length (a stroke of
    width w and length L has area wL and an outline of 2L)."""
    ink = np.asarray(mask) > 127
    area = int(ink.sum())
    if not area:
        return 0.0
    inner = np.asarray(mask.filter(ImageFilter.MinFilter(3))) > 127
    outline = int((ink & ~inner).sum())
    return 2 * area / max(outline, 1)


def _pad(mask: Image.Image, margin: int) -> Image.Image:
    padded = Image.new("L", (mask.width + 2 * margin, mask.height + 2 * margin), 0)
    padded.paste(mask, (margin, margin))
    return padded


def _restroke(mask: Image.Image, shape: LetterShape) -> Image.Image:
    """Thin (erode) or thicken (dilate) the strokes by whole px per side towards the drawn width."""
    width = stroke_width(mask)
    target = max(width * shape.stroke_scale, min(width, shape.min_stroke))
    steps = max(-4, min(3, round((target - width) / 2)))
    if not steps:
        return mask
    size = 2 * abs(steps) + 1
    changed = mask.filter(ImageFilter.MaxFilter(size) if steps > 0 else ImageFilter.MinFilter(size))
    return changed if changed.getbbox() else mask  # a face too thin to erode keeps its strokes


def _shear(mask: Image.Image, shear: float) -> Image.Image:
    """Slant the letter: each row moves by `shear` px per px of height, the baseline row staying where it is."""
    extra = math.ceil(abs(shear) * mask.height)
    # Output pixel (x, y) reads the source at x + shear * y + offset: the top rows read further left for a positive
    # shear, so the ink there moves right.
    offset = -shear * mask.height if shear > 0 else 0.0
    size = (mask.width + extra, mask.height)
    return mask.transform(size, Image.Transform.AFFINE, (1, shear, offset, 0, 1, 0),
                          resample=Image.Resampling.BILINEAR)  # fmt: skip


def _warp(mask: Image.Image, displacement: np.ndarray, height: float) -> Image.Image:
    """Elastic distortion: a mesh of quads whose source corners are the grid's corners moved by `displacement`."""
    cells = displacement.shape[0] - 1
    # Whole-pixel grid lines: a cell's box and its unmoved quad are then the same, and an unmoved mesh copies.
    xs = np.round(np.linspace(0, mask.width, cells + 1)).astype(int)
    ys = np.round(np.linspace(0, mask.height, cells + 1)).astype(int)
    moved = displacement * height

    def corner(i: int, j: int) -> tuple[float, float]:
        return float(xs[i] + moved[j, i, 0]), float(ys[j] + moved[j, i, 1])

    mesh = []
    for j in range(cells):
        for i in range(cells):
            box = (int(xs[i]), int(ys[j]), int(xs[i + 1]), int(ys[j + 1]))
            quad = (*corner(i, j), *corner(i, j + 1), *corner(i + 1, j + 1), *corner(i + 1, j))
            mesh.append((box, quad))
    return mask.transform(mask.size, Image.Transform.MESH, mesh, resample=Image.Resampling.BILINEAR)


def shape_letter(mask: Image.Image, shape: LetterShape) -> Image.Image:
    """A letter's coverage mask (upright, as the face draws it) restroked, slanted and warped; not cropped."""
    height = float(mask.height)
    # Room for the heaviest restroke (3 px a side) and the largest corner move: no ink is cut off.
    reach = math.ceil(float(np.abs(shape.displacement).max(initial=0.0)) * height)
    mask = _restroke(_pad(mask, 4 + reach), shape)
    return _warp(_shear(mask, shape.shear), shape.displacement, height)
