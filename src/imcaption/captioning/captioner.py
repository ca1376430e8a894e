"""A trained captioner, loaded for use: `Captioner.load(path).caption(images)`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imcaption.captioning.task import (
    CAPTIONER_FORMAT,
    CaptionModelSpec,
    build_caption_model,
    caption_grid,
    search_captions,
)
from imcaption.engine.checkpoint import CheckpointError, export_model, load_model_file
from imcaption.engine.loop import resolve_device
from imcaption.images import ImageLike, ImageSize, as_batch, as_image, as_image_list, to_model_input
from imcaption.models.caption_decoders import CaptionModel
from imcaption.text.word_tokenizer import END, WordTokenizer


@dataclass
class Caption:
    """A caption and, for sat under greedy search with attention=True, the attention over the grid of each of
    its steps (its words and <end>), (steps, grid rows, grid cols)."""

    text: str
    attention: np.ndarray | None = None


def _spec(state: dict[str, Any]) -> CaptionModelSpec:
    if "model_config" in state:
        return CaptionModelSpec(**state["model_config"])
    old = state["train_config"]  # imcaption 0.1 kept only its training config
    return CaptionModelSpec(old["decoder"], old["encoder"], old["image_size"], old["max_length"])


class BaseCaptioner:
    """What every captioner offers over its backend (PyTorch here, ONNX Runtime in deploy/caption_onnx.py):
    a subclass gives `caption_pixels`; resizing, batching and the `Caption` results are shared."""

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

    def caption(self, images: Any, beam: int = 1, attention: bool = False,
                batch_size: int = 64) -> Caption | list[Caption]:  # fmt: skip
        """Caption one image (path, PIL image, uint8 array) -> Caption, or many -> list[Caption], in batches of
        at most `batch_size`. attention=True needs greedy search (beam=1) and a sat decoder."""
        if attention and beam > 1:
            raise ValueError("attention maps come from greedy search; use beam=1 with attention=True")
        items, single = as_image_list(images)
        captions: list[Caption] = []
        for start in range(0, len(items), batch_size):
            ids, grids = self.caption_pixels(self.pixels(items[start : start + batch_size]), beam)
            grids = grids if attention else None
            captions += [
                Caption(self.tokenizer.decode(row), None if grids is None else grids[n][: own_steps(row)])
                for n, row in enumerate(ids)
            ]
        return captions[0] if single else captions


def own_steps(ids: list[int]) -> int:
    """The steps of a caption itself, its words and <end>: what comes after is padding to the batch's longest,
    where the decoders differ (the PyTorch search feeds <pad>, the ONNX graph its own argmax)."""
    return ids.index(END) + 1 if END in ids else len(ids)


class Captioner(BaseCaptioner):
    def __init__(self, model: CaptionModel, spec: CaptionModelSpec, tokenizer: WordTokenizer,
                 device: torch.device) -> None:  # fmt: skip
        self.model, self.spec, self.tokenizer, self.device = model, spec, tokenizer, device
        self._backbone: torch.nn.Module | None = None

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> BaseCaptioner:
        """From a training checkpoint, a weights-only export, or an ONNX export (read by ONNX Runtime on the
        CPU, greedy search only)."""
        from imcaption.deploy.caption_onnx import OnnxCaptioner
        from imcaption.deploy.onnx_reader import is_onnx_file

        if is_onnx_file(path):
            if device != "cpu":
                raise ValueError(f"an ONNX model runs on the CPU here; got {device!r}")
            return OnnxCaptioner.load(path)
        state = load_model_file(path, CAPTIONER_FORMAT)
        try:
            spec = _spec(state)
            tokenizer = WordTokenizer.from_dict(state["tokenizer"])
            model = build_caption_model(spec, tokenizer.vocab_size)
            model.load_state_dict(state["model"])
        except (KeyError, TypeError, RuntimeError) as err:
            raise CheckpointError(f"{path}: checkpoint does not match this model code: {err}") from None
        target = resolve_device(device)
        return cls(model.eval().to(target), spec, tokenizer, target)

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

        return self.backbone().features(imagenet_normalize(batch)).flatten(2).transpose(1, 2)

    @torch.no_grad()
    def caption_inputs(self, inputs: torch.Tensor, beam: int = 1) -> tuple[list[list[int]], torch.Tensor | None]:
        """Token ids per image and, for sat under greedy search, attention (B, T, N)."""
        self.model.eval()
        return search_captions(self.model, inputs, self.spec.max_length, beam)

    def caption_pixels(self, pixels: np.ndarray, beam: int = 1) -> tuple[list[list[int]], np.ndarray | None]:
        ids, maps = self.caption_inputs(self.inputs(pixels), beam)
        return ids, None if maps is None else maps.view(*maps.shape[:2], *self.grid).cpu().numpy()


def export_captioner(checkpoint: str | Path, out: str | Path) -> Path:
    """A weights-only model file (safetensors + JSON description) from a training checkpoint."""
    state = load_model_file(checkpoint, CAPTIONER_FORMAT)
    described = {"model_config": asdict(_spec(state)), "tokenizer": state["tokenizer"]}
    export_model(out, state["model"], described, CAPTIONER_FORMAT)
    return Path(out)
