"""Reading a cached split in batches (evaluation, answer files)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from imcaption.captcha.image_cache import ImageCache
from imcaption.captcha.reading_types import READ_BATCH, BaseRecognizer, Readings
from imcaption.engine.progress import progress_bar
from imcaption.engine.search import LexiconTrie


def search_name(beam: int) -> str:
    """How readings of this beam width were searched, for reports."""
    return "greedy" if beam == 1 else f"beam {beam}"


def read_cached(
    recognizer: BaseRecognizer,
    cache: ImageCache,
    indices: Sequence[int],
    batch_size: int = READ_BATCH,
    beam: int = 1,
    lexicon: LexiconTrie | None = None,
    progress: bool = True,
    views: int = 1,
) -> Readings:
    words: list[str] = []
    confidences: list[float] = []
    indices = np.asarray(indices)
    with progress_bar(enabled=progress, total=len(indices), desc="read", unit="img") as bar:
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            decoded = recognizer.decode_pixels(cache.read(chunk), beam, lexicon, views)
            words += decoded.words
            confidences += decoded.confidences
            bar.update(len(chunk))
    return Readings(words, confidences)
