"""Attention grounding on the scenes dataset: when a captioner says a color or a shape, does it look there?

For every generated word that names a color or a shape, take the grid cell with the most attention at the step
that produced the word; the word is grounded when that cell overlaps the box of an object in the image with
that color or shape. A word naming nothing in the image counts as not grounded. The chance rate (the share of
cells that overlap a matching box, averaged over the same words) says what a peak placed at random would score.

Boxes and cells are compared in coordinates normalized to the image (0 to 1 across each side): the boxes are in
the pixels of the image as stored, while the grid covers the image as resized for the model, whose side can
differ (a 128-px scene read by a 224-px backbone).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from imcaption.captioning.scenes import COLORS, SHAPES
from imcaption.text.word_tokenizer import END, WordTokenizer

OBJECT_WORDS = frozenset(COLORS) | frozenset(SHAPES)


@dataclass(frozen=True)
class GroundingReport:
    words: int  # generated color and shape words
    grounded: int
    chance: float

    @property
    def rate(self) -> float:
        return self.grounded / self.words if self.words else 0.0


def cell_boxes(rows: int, cols: int) -> np.ndarray:
    """(rows * cols, 4) boxes x0, y0, x1, y1 of the grid cells over the unit square, row-major like the
    flattened feature grid."""
    ys, xs = np.mgrid[0:rows, 0:cols]
    return np.stack([xs / cols, ys / rows, (xs + 1) / cols, (ys + 1) / rows], axis=-1).reshape(-1, 4)


def normalized_box(box: Sequence[float], image_size: tuple[int, int]) -> tuple[float, float, float, float]:
    """A COCO [x, y, w, h] box in pixels of an image of (width, height), as fractions of that image."""
    (x, y, w, h), (width, height) = box, image_size
    return x / width, y / height, w / width, h / height


def overlaps(cells: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """Which cells share area with an [x, y, w, h] box in the cells' coordinates."""
    x, y, w, h = box
    return (cells[:, 0] < x + w) & (cells[:, 2] > x) & (cells[:, 1] < y + h) & (cells[:, 3] > y)


def matching_boxes(word: str, objects: Sequence[Mapping]) -> list[Sequence[float]]:
    return [o["bbox"] for o in objects if word in (o["color"], o["shape"])]


def measure_grounding(
    token_ids: torch.Tensor,
    attention: torch.Tensor,
    tokenizer: WordTokenizer,
    objects: Sequence[Sequence[Mapping]],
    grid: tuple[int, int],
    image_sizes: Sequence[tuple[int, int]],
) -> GroundingReport:
    """token_ids (B, T) from greedy decoding and attention (B, T, rows * cols) from the same steps; objects[b]
    lists image b's objects as in annotations/objects.json (shape, color, bbox in pixels of the stored image),
    and image_sizes[b] is that image's (width, height)."""
    cells = cell_boxes(*grid)
    peaks = attention.argmax(dim=-1).tolist()
    words = grounded = 0
    chance = 0.0
    for row, ids in enumerate(token_ids.tolist()):
        for step, token in enumerate(ids):
            if token == END:
                break
            word = tokenizer.word(token)
            if word not in OBJECT_WORDS:
                continue
            hits = np.zeros(len(cells), dtype=bool)
            for box in matching_boxes(word, objects[row]):
                hits |= overlaps(cells, normalized_box(box, image_sizes[row]))
            words += 1
            grounded += bool(hits[peaks[row][step]])
            chance += hits.mean()
    return GroundingReport(words, grounded, chance / words if words else 0.0)
