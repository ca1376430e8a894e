"""A trained captcha recognizer run by PyTorch: `TorchRecognizer.load(path).read(images)`.

This reader takes training checkpoints and weights-only exports. `imcaption.Recognizer` (api.py) is the entry
point that takes any model file and picks the backend by its content, ONNX Runtime for an .onnx export.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from imcaption.captcha.reading_types import (
    ANSWER_BEAM,
    READ_BATCH,
    READ_PRECISION,
    RECOGNIZER_FORMAT,
    BaseRecognizer,
    Reading,
    Readings,
    letter_confidences,
)
from imcaption.engine.checkpoint import CheckpointError, export_model, load_model_file
from imcaption.engine.devices import resolve_device
from imcaption.engine.precision import resolve_precision
from imcaption.engine.search import LexiconTrie, Searched
from imcaption.images import ImageSize
from imcaption.models import RecognizerConfig, build_recognizer
from imcaption.models.sat import TOKENS
from imcaption.models.views import VIEW_SHIFT, decode_views, view_offsets
from imcaption.text.char_tokenizer import CharTokenizer

# The shared reading types stay importable from here, where they were defined before reading_types.py.
__all__ = [
    "ANSWER_BEAM",
    "DESCRIPTION_KEYS",
    "READ_BATCH",
    "READ_PRECISION",
    "BaseRecognizer",
    "Reading",
    "Readings",
    "Recognizer",
    "TorchRecognizer",
    "export_recognizer",
    "letter_confidences",
]

# What a model file must describe besides its weights; `export` keeps exactly these.
DESCRIPTION_KEYS = ("model_config", "tokenizer", "image_size")


class TorchRecognizer(BaseRecognizer):
    """The model, its tokenizer and its input size: everything a checkpoint or an export carries."""

    def __init__(self, model: nn.Module, config: RecognizerConfig, tokenizer: CharTokenizer, size: ImageSize,
                 device: torch.device, precision: str = "fp32") -> None:  # fmt: skip
        self.model, self.config, self.tokenizer, self.size, self.device = model, config, tokenizer, size, device
        self.precision = precision
        self.view_shift = VIEW_SHIFT  # pixels between the copies read with views > 1

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", precision: str = READ_PRECISION) -> TorchRecognizer:
        """From a training checkpoint (best.pt, last.pt) or a weights-only export; nothing else is needed (an
        ONNX export is refused: `imcaption.Recognizer.load` reads it). `precision`: "auto" (bf16 where the
        hardware has it, else fp32), "fp32" (reads exactly as training's validation measured) or "bf16" (the
        encoder in bf16, the decoder in fp32: faster where the CPU has bf16 in hardware, BENCHMARKS.md; a close
        call may go the other way)."""
        target = resolve_device(device)
        resolved = resolve_precision(precision, target)
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

    def decode(
        self, images: torch.Tensor, beam: int = 1, lexicon: LexiconTrie | None = None, views: int = 1
    ) -> Readings:
        """Model inputs (B, 3, H, W) at the model's size -> words, confidences, attention. In bf16 only the
        encoder runs in bf16 (`prepare_for_reading`); the decoder stays fp32, where its small matrices and the
        attention's tanh ran slower in bf16 than in fp32. `views` 3 or 5: each image also read shifted
        left/right (and up/down), the copies' log-probabilities averaged at each step (models.views)."""
        images = images.to(self.device)
        if views == 1:
            searched = self.model.decode(images, beam, lexicon)
        else:
            searched = self._decode_views(images, views, beam, lexicon)
        words = [self.tokenizer.decode(ids) for ids in searched.ids]
        letters = None
        if searched.id_log_probs is not None:
            pairs = zip(searched.ids, searched.id_log_probs, strict=True)
            letters = [letter_confidences(ids, log_probs) for ids, log_probs in pairs]
        return Readings(words, searched.confidences, searched.attention, letters)

    def _decode_views(self, images: torch.Tensor, views: int, beam: int, lexicon: LexiconTrie | None) -> Searched:
        if not self.model.has_beam_search:
            raise ValueError(f"views > 1 needs a step-by-step decoder (sat, par), not {self.config.kind}")
        offsets = view_offsets(views, self.view_shift)
        searched = decode_views(self.model, images, offsets, TOKENS, self.model.max_length + 1, beam, lexicon)
        if searched.attention is not None:
            searched.attention = searched.attention.view(*searched.attention.shape[:2], *self.config.encoder.grid)
        return searched

    def decode_pixels(
        self, pixels: np.ndarray, beam: int = 1, lexicon: LexiconTrie | None = None, views: int = 1
    ) -> Readings:
        # Still uint8: the encoder's first layer converts the pixels while padding them, one pass fewer.
        return self.decode(torch.from_numpy(pixels).permute(0, 3, 1, 2), beam, lexicon, views)


# The PyTorch reader's name before the backend choice moved up to imcaption.api (which subclasses it).
Recognizer = TorchRecognizer


def export_recognizer(checkpoint: str | Path, out: str | Path) -> Path:
    """A weights-only model file (safetensors + JSON description) from a training checkpoint."""
    state = load_model_file(checkpoint, RECOGNIZER_FORMAT)
    export_model(out, state["model"], {key: state[key] for key in DESCRIPTION_KEYS}, RECOGNIZER_FORMAT)
    return Path(out)
