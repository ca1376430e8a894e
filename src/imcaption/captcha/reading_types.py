"""What every captcha reader shares, whatever runs the model: the results (`Reading`, `Readings`), each letter's
confidence, the file format's name, and `BaseRecognizer`, which resizes, batches and reads images through a
backend's `decode_pixels`.

The PyTorch reader (recognizer.py), the ONNX Runtime reader (deploy/onnx_reader.py) and the training task
(task.py) all import this module and none of them imports another for it: reading a model never imports the
training code, and neither backend imports the other (tests/test_imports.py checks both).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from imcaption.images import ImageLike, ImageSize, as_image, as_image_list, to_model_input
from imcaption.models import RecognizerConfig
from imcaption.text.char_tokenizer import END, SPECIALS, CharTokenizer

# Nothing here imports torch: the ONNX Runtime reader builds on this module where only the core is installed (no
# 'train' extra). The lexicon trie is a torch tensor, imported where one is made.
if TYPE_CHECKING:
    import torch

    from imcaption.engine.search import LexiconTrie

# The `format` of recognizer checkpoints and weights-only exports: training writes it, the readers check it.
RECOGNIZER_FORMAT = "imcaption-recognizer"

# Images decoded at a time when reading many: the decoder's per-step tensors (batch x grid x attention width)
# stay in the core's cache at 64 and fall out of it at 500, where the default model reads fewer images/s, in fp32
# and in bf16 (bench/infer_profile.py: bench/results/infer_profile_sat_60_96x192_b500*.json against the _b64 ones).
READ_BATCH = 64

# Answer files, evaluations and the `read` command decode a model that has beam search with this width unless told
# otherwise: in every full sat benchmark run it read more of validation than greedy search did (val_exact_match_beam3
# against val_exact_match in bench/results/captcha_full_*.json), though it reads more slowly (the infer_profile
# results with _beam3 against those without). par searches the same way and takes the same default; no full par
# run has measured it yet.
ANSWER_BEAM = 3

# Reading runs the encoder in bf16 where the processor has it in hardware (AMX, AVX-512 BF16): more images/s than
# fp32 on the Xeon of BENCHMARKS.md, with a handful of words in 10,000 read differently and the same
# exact match (bench/results/infer_profile_*.json). "fp32" reads exactly as training's validation measured.
READ_PRECISION = "auto"


def letter_confidences(ids: list[int], id_log_probs: Sequence[float] | np.ndarray) -> list[float]:
    """The probability of each letter the tokenizer will decode from `ids`: steps before <end> whose id is a
    letter (the tokenizer skips <pad> and <start>), so each confidence sits on its own letter."""
    confidences = []
    for token, log_prob in zip(ids, id_log_probs, strict=False):
        if token == END:
            break
        if token >= len(SPECIALS):
            confidences.append(float(np.exp(log_prob)))
    return confidences


@dataclass
class Reading:
    """One image's reading: the word ("" when nothing was read), its probability under the model, and for sat
    models read greedily with attention=True, the attention of each step, (steps, grid rows, grid cols); each
    character's probability where the search gives it (greedy search and CTC best path)."""

    word: str
    confidence: float
    attention: np.ndarray | None = None
    char_confidences: list[float] | None = None


@dataclass
class Readings:
    """A batch's readings; attention (B, steps, rows, cols) for attention models under greedy search, else None;
    the probability of each character of each word under greedy search or CTC best path, else None."""

    words: list[str]
    confidences: list[float]
    attention: torch.Tensor | np.ndarray | None = None
    char_confidences: list[list[float]] | None = None


class BaseRecognizer:
    """Reading images with any backend: subclasses give `decode_pixels` and carry `config`, `tokenizer`, `size`."""

    config: RecognizerConfig
    tokenizer: CharTokenizer
    size: ImageSize

    def decode_pixels(
        self, pixels: np.ndarray, beam: int = 1, lexicon: LexiconTrie | None = None, views: int = 1
    ) -> Readings:
        """(B, H, W, 3) uint8 model inputs -> words, confidences, attention. `views` > 1: each image read as
        that many shifted copies, averaged (where the backend has it)."""
        raise NotImplementedError

    @property
    def answer_beam(self) -> int:
        """The beam width answers are written with: greedy here, for backends without beam search."""
        return 1

    def lexicon(self, words: Iterable[str]) -> LexiconTrie:
        """A constraint to pass as `lexicon=`: only these words can be read."""
        from imcaption.engine.search import LexiconTrie

        return LexiconTrie(words, self.tokenizer.encode, self.tokenizer.vocab_size, END)

    def inputs(self, images: Sequence[ImageLike]) -> np.ndarray:
        """(B, H, W, 3) uint8: each image resized to the model's input exactly as the training cache was."""
        return np.stack([to_model_input(as_image(item), self.size) for item in images])

    def read(self, images: Any, beam: int = 1, lexicon: LexiconTrie | None = None, attention: bool = False,
             batch_size: int = READ_BATCH, views: int = 1) -> Reading | list[Reading]:  # fmt: skip
        """Read one image (a path, a PIL image, an (H, W, 3) uint8 array) -> Reading, or many (a list of those,
        or a (B, H, W, 3) array) -> list[Reading]. Any size and mode; batches of at most `batch_size` images are
        decoded at a time, so a long list never sits in memory at once. attention=True needs greedy search.
        `views` 3 or 5: each image also read shifted by a pixel, the copies averaged (PyTorch sat and par only)."""
        if attention and beam > 1:
            raise ValueError("attention maps come from greedy search; use beam=1 with attention=True")
        items, single = as_image_list(images)
        readings: list[Reading] = []
        for start in range(0, len(items), batch_size):
            decoded = self.decode_pixels(self.inputs(items[start : start + batch_size]), beam, lexicon, views)
            maps = np.asarray(decoded.attention) if attention and decoded.attention is not None else None
            char_confidences = decoded.char_confidences or [None] * len(decoded.words)
            readings += [
                Reading(word, confidence, None if maps is None else maps[n], char_confidences[n])
                for n, (word, confidence) in enumerate(zip(decoded.words, decoded.confidences, strict=True))
            ]
        return readings[0] if single else readings
