"""Batching around the pure models: cached splits and loose image files in, words out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from imcaption.checkpoint import Recognizer
from imcaption.data.image_cache import ImageCache
from imcaption.data.preprocess import load_image, to_model_input
from imcaption.decode import Decoded, LexiconTrie, decode_batch


def as_batch(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float in channels-last memory, the fast layout for CPU convs."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float()


def read_cached(
    recognizer: Recognizer,
    cache: ImageCache,
    indices: Sequence[int],
    batch_size: int = 500,
    beam: int = 1,
    trie: LexiconTrie | None = None,
    progress: bool = True,
) -> Decoded:
    words: list[str] = []
    confidences: list[float] = []
    indices = np.asarray(indices)
    with tqdm(total=len(indices), desc="read", unit="img", disable=not progress) as bar:
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            decoded = decode_batch(recognizer.model, as_batch(cache.read(chunk)), recognizer.tokenizer, beam, trie)
            words += decoded.words
            confidences += decoded.confidences
            bar.update(len(chunk))
    return Decoded(words, confidences)


def read_files(
    recognizer: Recognizer, paths: Sequence[str | Path], beam: int = 1, trie: LexiconTrie | None = None
) -> tuple[Decoded, np.ndarray]:
    """Any size and mode; each image is resized to the model's input like the cache does.
    Returns the decoded words and the model inputs (for attention plots)."""
    inputs = np.stack([to_model_input(load_image(p), recognizer.size) for p in paths])
    return decode_batch(recognizer.model, as_batch(inputs), recognizer.tokenizer, beam, trie), inputs
