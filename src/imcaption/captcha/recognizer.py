"""A trained captcha recognizer, loaded for use: `Recognizer.load(path).read(images)`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from imcaption.captcha.task import RECOGNIZER_FORMAT
from imcaption.engine.checkpoint import CheckpointError, export_model, load_model_file
from imcaption.engine.loop import resolve_device
from imcaption.engine.precision import resolve_precision
from imcaption.engine.search import LexiconTrie
from imcaption.images import ImageLike, ImageSize, as_image, as_image_list, to_model_input
from imcaption.models import RecognizerConfig, build_recognizer
from imcaption.text.char_tokenizer import END, SPECIALS, CharTokenizer

# What a model file must describe besides its weights; `export` keeps exactly these.
DESCRIPTION_KEYS = ("model_config", "tokenizer", "image_size")

# Answer files, evaluations and the `read` command decode a model that has beam search with this width unless told
# otherwise: in every full sat benchmark run it read more of validation than greedy search did (val_exact_match_beam3
# against val_exact_match in bench/results/captcha_full_*.json), at about half the reading speed. par searches the
# same way and takes the same default; no full par run has measured it yet.
ANSWER_BEAM = 3

# Images decoded at a time when reading many: the decoder's per-step tensors (batch x grid x attention width)
# stay in the core's cache at 64 and fall out of it at 500, where the default model read greedily at 474.6
# against 607.9-720.4 images/s in fp32 and 855.2 against 1,662.8 in bf16
# (bench/results/infer_profile_sat_60_96x192_b500*.json against the _b64 ones).
READ_BATCH = 64

# Reading runs the encoder in bf16 where the processor has it in hardware (AMX, AVX-512 BF16): about twice the
# images/s of fp32 on the Xeon of BENCHMARKS.md, with a handful of words in 10,000 read differently and the same
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

    def decode_pixels(self, pixels: np.ndarray, beam: int = 1, lexicon: LexiconTrie | None = None) -> Readings:
        """(B, H, W, 3) uint8 model inputs -> words, confidences, attention."""
        raise NotImplementedError

    @property
    def answer_beam(self) -> int:
        """The beam width answers are written with: greedy here, for backends without beam search."""
        return 1

    def lexicon(self, words: Iterable[str]) -> LexiconTrie:
        """A constraint to pass as `lexicon=`: only these words can be read."""
        return LexiconTrie(words, self.tokenizer.encode, self.tokenizer.vocab_size, END)

    def inputs(self, images: Sequence[ImageLike]) -> np.ndarray:
        """(B, H, W, 3) uint8: each image resized to the model's input exactly as the training cache was."""
        return np.stack([to_model_input(as_image(item), self.size) for item in images])

    def read(self, images: Any, beam: int = 1, lexicon: LexiconTrie | None = None, attention: bool = False,
             batch_size: int = READ_BATCH) -> Reading | list[Reading]:  # fmt: skip
        """Read one image (a path, a PIL image, an (H, W, 3) uint8 array) -> Reading, or many (a list of those,
        or a (B, H, W, 3) array) -> list[Reading]. Any size and mode; batches of at most `batch_size` images are
        decoded at a time, so a long list never sits in memory at once. attention=True needs greedy search."""
        if attention and beam > 1:
            raise ValueError("attention maps come from greedy search; use beam=1 with attention=True")
        items, single = as_image_list(images)
        readings: list[Reading] = []
        for start in range(0, len(items), batch_size):
            decoded = self.decode_pixels(self.inputs(items[start : start + batch_size]), beam, lexicon)
            maps = np.asarray(decoded.attention) if attention and decoded.attention is not None else None
            char_confidences = decoded.char_confidences or [None] * len(decoded.words)
            readings += [
                Reading(word, confidence, None if maps is None else maps[n], char_confidences[n])
                for n, (word, confidence) in enumerate(zip(decoded.words, decoded.confidences, strict=True))
            ]
        return readings[0] if single else readings


class Recognizer(BaseRecognizer):
    """The model, its tokenizer and its input size: everything a checkpoint or an export carries."""

    def __init__(self, model: nn.Module, config: RecognizerConfig, tokenizer: CharTokenizer, size: ImageSize,
                 device: torch.device, precision: str = "fp32") -> None:  # fmt: skip
        self.model, self.config, self.tokenizer, self.size, self.device = model, config, tokenizer, size, device
        self.precision = precision

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", precision: str = READ_PRECISION) -> BaseRecognizer:
        """From a training checkpoint (best.pt, last.pt), a weights-only export, or an ONNX export (read by
        ONNX Runtime on the CPU); nothing else is needed. `precision`: "auto" (bf16 where the hardware has it,
        else fp32; fp32 for an ONNX model), "fp32" (reads exactly as training's validation measured) or "bf16"
        (the encoder in bf16, the decoder in fp32: faster where the CPU has bf16 in hardware, BENCHMARKS.md; a
        close call may go the other way)."""
        from imcaption.deploy.onnx_reader import OnnxRecognizer, is_onnx_file

        target = resolve_device(device)
        resolved = resolve_precision(precision, target)
        if is_onnx_file(path):
            if device != "cpu" or precision == "bf16":  # "auto" is fp32 for ONNX Runtime, on any CPU
                raise ValueError(f"an ONNX model runs in fp32 on the CPU here; got {device!r} in {precision}")
            return OnnxRecognizer.load(path)
        state = load_model_file(path, RECOGNIZER_FORMAT)
        try:
            config = RecognizerConfig.from_dict(state["model_config"])
            model = build_recognizer(config)
            model.load_state_dict(state["model"])
            tokenizer = CharTokenizer.from_dict(state["tokenizer"])
            size = ImageSize(**state["image_size"])
        except (KeyError, TypeError, RuntimeError) as err:
            raise CheckpointError(f"{path}: checkpoint does not match this model code: {err}") from None
        model.eval()
        model.encoder.prepare_for_reading(resolved)
        return cls(model.to(target, memory_format=torch.channels_last), config, tokenizer, size, target, resolved)

    def lexicon(self, words: Iterable[str]) -> LexiconTrie:
        return super().lexicon(words).to(self.device)

    @property
    def answer_beam(self) -> int:
        return ANSWER_BEAM if self.model.has_beam_search else 1

    def decode(self, images: torch.Tensor, beam: int = 1, lexicon: LexiconTrie | None = None) -> Readings:
        """Model inputs (B, 3, H, W) at the model's size -> words, confidences, attention. In bf16 only the
        encoder runs in bf16 (`prepare_for_reading`); the decoder stays fp32, where its small matrices and the
        attention's tanh ran slower in bf16 than in fp32."""
        searched = self.model.decode(images.to(self.device), beam, lexicon)
        words = [self.tokenizer.decode(ids) for ids in searched.ids]
        letters = None
        if searched.id_log_probs is not None:
            pairs = zip(searched.ids, searched.id_log_probs, strict=True)
            letters = [letter_confidences(ids, log_probs) for ids, log_probs in pairs]
        return Readings(words, searched.confidences, searched.attention, letters)

    def decode_pixels(self, pixels: np.ndarray, beam: int = 1, lexicon: LexiconTrie | None = None) -> Readings:
        # Still uint8: the encoder's first layer converts the pixels while padding them, one pass fewer.
        return self.decode(torch.from_numpy(pixels).permute(0, 3, 1, 2), beam, lexicon)


def export_recognizer(checkpoint: str | Path, out: str | Path) -> Path:
    """A weights-only model file (safetensors + JSON description) from a training checkpoint."""
    state = load_model_file(checkpoint, RECOGNIZER_FORMAT)
    export_model(out, state["model"], {key: state[key] for key in DESCRIPTION_KEYS}, RECOGNIZER_FORMAT)
    return Path(out)
