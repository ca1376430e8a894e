"""What every captioner shares, whatever runs the model: the file format's name, the `Caption` result, and
`BaseCaptioner`, which resizes, batches and captions images through a backend's `caption_pixels`.

The PyTorch captioner (captioner.py), the ONNX Runtime captioner (deploy/caption_onnx_reader.py) and the training
task (task.py) all import this module and none of them imports another for it (tests/test_imports.py checks it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from imcaption.captioning.model_spec import CaptionModelSpec, caption_grid
from imcaption.images import ImageLike, ImageSize, as_image, as_image_list, to_model_input
from imcaption.text.word_tokenizer import END, WordTokenizer

# The `format` of captioner checkpoints and weights-only exports: training writes it, the readers check it.
CAPTIONER_FORMAT = "imcaption-captioner"

# Images captioned at a time when captioning many (`caption(..., batch_size=)`, `--batch-size`).
CAPTION_BATCH = 64

# Captioning reads in fp32 unless asked otherwise: bf16 (the captcha reader's "auto" where the CPU has it) has not
# been measured for captioning, neither its speed nor how many captions it changes; fp32 captions exactly as
# training's validation scored.
CAPTION_PRECISION = "fp32"


@dataclass
class Caption:
    """A caption and, for sat under greedy search with attention=True, the attention over the grid of each of
    its steps (its words and <end>), (steps, grid rows, grid cols)."""

    text: str
    attention: np.ndarray | None = None


def own_steps(ids: list[int]) -> int:
    """The steps of a caption itself, its words and <end>: what comes after is padding to the batch's longest,
    where the decoders differ (the PyTorch search feeds <pad>, the ONNX graph its own argmax)."""
    return ids.index(END) + 1 if END in ids else len(ids)


class BaseCaptioner:
    """What every captioner offers over its backend (PyTorch in captioner.py, ONNX Runtime in
    deploy/caption_onnx_reader.py): a subclass gives `caption_pixels`; resizing, batching and the `Caption`
    results are shared."""

    spec: CaptionModelSpec
    tokenizer: WordTokenizer

    @property
    def grid(self) -> tuple[int, int]:
        """Rows and columns of the feature grid that attention is spread over, as the encoder computes it."""
        return caption_grid(self.spec.encoder, self.spec.image_size)

    def pixels(self, images: list[ImageLike]) -> np.ndarray:
        """(B, side, side, 3) uint8, each image resized as in training."""
        size = ImageSize(self.spec.image_size, self.spec.image_size)
        return np.stack([to_model_input(as_image(item), size) for item in images])

    def caption_pixels(self, pixels: np.ndarray, beam: int = 1) -> tuple[list[list[int]], np.ndarray | None]:
        """Token ids per image of model-sized pixels (B, side, side, 3) and, for sat under greedy search, the
        attention of each step (B, T, grid rows, grid cols), T the batch's longest caption (with <end>)."""
        raise NotImplementedError

    def caption(self, images: Any, beam: int = 1, attention: bool = False, batch_size: int = CAPTION_BATCH,
                progress: bool = False) -> Caption | list[Caption]:  # fmt: skip
        """Caption one image (path, PIL image, uint8 array) -> Caption, or many -> list[Caption], in batches of
        at most `batch_size` (with a progress bar over them if `progress`). attention=True needs greedy search
        (beam=1) and a sat decoder."""
        if beam < 1 or batch_size < 1:
            raise ValueError(f"beam and batch_size must be at least 1, got beam {beam}, batch_size {batch_size}")
        if attention and beam > 1:
            raise ValueError("attention maps come from greedy search; use beam=1 with attention=True")
        items, single = as_image_list(images)
        captions: list[Caption] = []
        for start in _batch_starts(len(items), batch_size, progress):
            ids, grids = self.caption_pixels(self.pixels(items[start : start + batch_size]), beam)
            grids = grids if attention else None
            captions += [
                Caption(self.tokenizer.decode(row), None if grids is None else grids[n][: own_steps(row)])
                for n, row in enumerate(ids)
            ]
        return captions[0] if single else captions


def _batch_starts(count: int, batch_size: int, progress: bool) -> Iterator[int]:
    """The first index of each batch, under a progress bar of images when asked for (imported only then: tqdm
    comes with the 'train' extra)."""
    if not progress:
        yield from range(0, count, batch_size)
        return
    from imcaption.engine.progress import progress_bar

    with progress_bar(total=count, desc="captioning", unit="image") as bar:
        for start in range(0, count, batch_size):
            yield start
            bar.update(min(batch_size, count - start))
