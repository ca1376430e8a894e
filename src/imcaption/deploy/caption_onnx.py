"""A trained captioner as one ONNX graph (its ONNX Runtime reader is caption_onnx_reader.py).

The graph is built like the recognizer's (onnx_export.py), for the same reasons: uint8 pixels in, the greedy
decoding unrolled inside it (max_length steps, each feeding back its own argmax), every step's logits and, for
sat, attention out; the words are picked from those outside. A MobileNetV2 captioner carries its frozen backbone
inside the graph, so the .onnx file alone is the whole model: no weights package is needed where it runs.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from imcaption.captioning.captioner import TorchCaptioner
from imcaption.deploy.caption_onnx_reader import (
    CAPTION_ONNX_FORMAT,
    CAPTION_ONNX_VERSION,
    READABLE_CAPTION_ONNX_VERSIONS,
    OnnxCaptioner,
    greedy_caption_ids,
)
from imcaption.deploy.onnx_export import export_graph, unrolled_greedy
from imcaption.engine.checkpoint import is_onnx_file
from imcaption.models.caption_decoders import CaptionModel
from imcaption.text.word_tokenizer import START
from imcaption.version import __version__

# The reader's names stay importable from here, where the reader was defined before caption_onnx_reader.py.
__all__ = [
    "CAPTION_ONNX_FORMAT",
    "CAPTION_ONNX_VERSION",
    "READABLE_CAPTION_ONNX_VERSIONS",
    "CaptionGreedyGraph",
    "OnnxCaptioner",
    "export_captioner_onnx",
    "greedy_caption_ids",
    "write_caption_onnx",
]


class CaptionGreedyGraph(nn.Module):
    """(B, side, side, 3) uint8 -> logits (B, max_length, V) and, for sat, attention (B, max_length, cells)."""

    def __init__(self, model: CaptionModel, max_length: int, backbone: nn.Module | None = None) -> None:
        super().__init__()
        self.model, self.max_length, self.backbone = model, max_length, backbone

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.backbone is None:
            return self.model.features(pixels)
        from imcaption.models.mobilenet_v2 import imagenet_normalize

        return self.backbone.features(imagenet_normalize(pixels)).flatten(2).transpose(1, 2)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        pixels = images.permute(0, 3, 1, 2).float()
        state = self.model.decoder.start(self.features(pixels))
        return unrolled_greedy(self.model.decoder, state, pixels.shape[0], START, self.max_length)


def export_captioner_onnx(checkpoint: str | Path, out: str | Path) -> Path:
    """`out` (.onnx) from a captioner's training checkpoint or weights-only export."""
    if is_onnx_file(checkpoint):
        raise ValueError(f"{checkpoint} is already an ONNX model")
    return write_caption_onnx(TorchCaptioner.load(checkpoint), out)


def write_caption_onnx(captioner: TorchCaptioner, out: str | Path) -> Path:
    """Write `captioner` to `out` as ONNX: the batch dimension dynamic, its description in the metadata."""
    spec = captioner.spec
    backbone = captioner.backbone() if spec.encoder == "mobilenet" else None
    graph = CaptionGreedyGraph(captioner.model.eval(), spec.max_length, backbone).eval()
    example = torch.zeros(2, spec.image_size, spec.image_size, 3, dtype=torch.uint8)
    outputs = ["logits", "attention"] if captioner.model.has_attention else ["logits"]
    description = {
        "format": CAPTION_ONNX_FORMAT,
        "format_version": CAPTION_ONNX_VERSION,
        "imcaption": __version__,
        "model_config": asdict(spec),
        "tokenizer": captioner.tokenizer.to_dict(),
    }
    return export_graph(graph, example, outputs, description, out)
