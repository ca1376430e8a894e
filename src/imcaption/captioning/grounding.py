"""Attention grounding on the scenes dataset: when a captioner says a color or a shape, does it look there?

For every generated word that names a color or a shape, take the grid cell with the most attention at the step
that produced the word; the word is grounded when that cell overlaps the box of an object in the image with
that color or shape. A word naming nothing in the image counts as not grounded. The chance rate (the share of
cells that overlap a matching box, averaged over the same words) says what a peak placed at random would score.
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


def cell_boxes(rows: int, cols: int, side: int) -> np.ndarray:
    """(rows * cols, 4) boxes x0, y0, x1, y1 of the grid cells over a side x side image, row-major like the
    flattened feature grid."""
    ys, xs = np.mgrid[0:rows, 0:cols]
    height, width = side / rows, side / cols
    return np.stack([xs * width, ys * height, (xs + 1) * width, (ys + 1) * height], axis=-1).reshape(-1, 4)


def overlaps(cells: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """Which cells share area with a COCO [x, y, w, h] box."""
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
    side: int,
) -> GroundingReport:
    """token_ids (B, T) from greedy decoding and attention (B, T, rows * cols) from the same steps; objects[b]
    lists image b's objects as in annotations/objects.json (shape, color, bbox)."""
    cells = cell_boxes(*grid, side)
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
                hits |= overlaps(cells, box)
            words += 1
            grounded += bool(hits[peaks[row][step]])
            chance += hits.mean()
    return GroundingReport(words, grounded, chance / words if words else 0.0)
