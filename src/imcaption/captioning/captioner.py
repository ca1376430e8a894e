"""A trained captioner run by PyTorch: `TorchCaptioner.load(path).caption(images)`.

This captioner takes training checkpoints and weights-only exports. `imcaption.Captioner` (api.py) is the entry
point that takes any model file and picks the backend by its content, ONNX Runtime for an .onnx export.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imcaption.captioning.model_spec import CaptionModelSpec, build_caption_model, search_captions
from imcaption.captioning.reading_types import CAPTION_PRECISION, CAPTIONER_FORMAT, BaseCaptioner, Caption, own_steps
from imcaption.engine.checkpoint import CheckpointError, export_model, load_model_file
from imcaption.engine.devices import resolve_device
from imcaption.engine.precision import autocast, resolve_precision
from imcaption.images import as_batch
from imcaption.models.caption_decoders import CaptionModel
from imcaption.text.word_tokenizer import WordTokenizer

# The shared reading types stay importable from here, where they were defined before reading_types.py.
__all__ = ["BaseCaptioner", "Caption", "Captioner", "TorchCaptioner", "export_captioner", "own_steps"]


def _spec(state: dict[str, Any]) -> CaptionModelSpec:
    if "model_config" in state:
        return CaptionModelSpec(**state["model_config"])
    old = state["train_config"]  # imcaption 0.1 kept only its training config
    return CaptionModelSpec(old["decoder"], old["encoder"], old["image_size"], old["max_length"])


class TorchCaptioner(BaseCaptioner):
    """The model, its spec and its tokenizer, run by PyTorch: beam search, and any device. `precision` (resolved,
    "fp32" or "bf16") is the number format the encoder runs in; the decoder stays fp32."""

    def __init__(self, model: CaptionModel, spec: CaptionModelSpec, tokenizer: WordTokenizer,
                 device: torch.device, precision: str = "fp32") -> None:  # fmt: skip
        self.model, self.spec, self.tokenizer, self.device = model, spec, tokenizer, device
        self.precision = precision
        self._backbone: torch.nn.Module | None = None

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", precision: str = CAPTION_PRECISION) -> TorchCaptioner:
        """From a training checkpoint or a weights-only export (an ONNX export is refused:
        `imcaption.Captioner.load` reads it). `precision`: "fp32" (the default: captions exactly as training's
        validation scored), "bf16" (the encoder under bf16 autocast) or "auto" (bf16 where the hardware has it)."""
        target = resolve_device(device)
        resolved = resolve_precision(precision, target)
        state = load_model_file(path, CAPTIONER_FORMAT)
        try:
            spec = _spec(state)
            tokenizer = WordTokenizer.from_dict(state["tokenizer"])
            model = build_caption_model(spec, tokenizer.vocab_size)
            model.load_state_dict(state["model"])
        except (KeyError, TypeError, RuntimeError) as err:
            raise CheckpointError(f"{path}: checkpoint does not match this model code: {err}") from None
        return cls(model.eval().to(target), spec, tokenizer, target, resolved)

    def backbone(self) -> torch.nn.Module:
        """The frozen ImageNet MobileNetV2 of a mobilenet captioner, loaded on first use."""
        from imcaption.models.mobilenet_v2 import load_mobilenet_v2

        if self._backbone is None:
            self._backbone = load_mobilenet_v2().to(self.device).eval()
        return self._backbone

    @torch.no_grad()
    def inputs(self, pixels: np.ndarray) -> torch.Tensor:
        """Model inputs: the pixels for the from-scratch CNN, or the frozen backbone's feature grid."""
        batch = as_batch(pixels).to(self.device)
        if self.spec.encoder != "mobilenet":
            return batch
        from imcaption.models.mobilenet_v2 import imagenet_normalize

        with autocast(self.precision, self.device):
            grid = self.backbone().features(imagenet_normalize(batch))
        return grid.float().flatten(2).transpose(1, 2)

    @torch.no_grad()
    def caption_inputs(self, inputs: torch.Tensor, beam: int = 1) -> tuple[list[list[int]], torch.Tensor | None]:
        """Token ids per image and, for sat under greedy search, attention (B, T, N)."""
        self.model.eval()
        return search_captions(self.model, inputs, self.spec.max_length, beam, self.precision)

    def caption_pixels(self, pixels: np.ndarray, beam: int = 1) -> tuple[list[list[int]], np.ndarray | None]:
        ids, maps = self.caption_inputs(self.inputs(pixels), beam)
        return ids, None if maps is None else maps.view(*maps.shape[:2], *self.grid).cpu().numpy()


# The PyTorch captioner's name before the backend choice moved up to imcaption.api (which subclasses it).
Captioner = TorchCaptioner


def export_captioner(checkpoint: str | Path, out: str | Path) -> Path:
    """A weights-only model file (safetensors + JSON description) from a training checkpoint."""
    state = load_model_file(checkpoint, CAPTIONER_FORMAT)
    described = {"model_config": asdict(_spec(state)), "tokenizer": state["tokenizer"]}
    export_model(out, state["model"], described, CAPTIONER_FORMAT)
    return Path(out)
