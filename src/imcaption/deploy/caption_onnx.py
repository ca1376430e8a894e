"""A trained captioner as one ONNX graph, and its ONNX Runtime reader.

The graph is built like the recognizer's (onnx_export.py), for the same reasons: uint8 pixels in, the greedy
decoding unrolled inside it (max_length steps, each feeding back its own argmax), every step's logits and, for
sat, attention out; the words are picked from those outside. A MobileNetV2 captioner carries its frozen backbone
inside the graph, so the .onnx file alone is the whole model: no weights package is needed where it runs.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from imcaption import __version__
from imcaption.captioning.captioner import BaseCaptioner, Captioner
from imcaption.captioning.task import CaptionModelSpec
from imcaption.deploy.onnx_export import export_graph
from imcaption.deploy.onnx_reader import ids_through_end, open_session, read_description
from imcaption.models.caption_decoders import CaptionModel
from imcaption.text.word_tokenizer import END, START, WordTokenizer

CAPTION_ONNX_FORMAT = "imcaption-onnx-captioner"
CAPTION_ONNX_VERSION = 1
READABLE_CAPTION_ONNX_VERSIONS = (1,)


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
        token = torch.full((pixels.shape[0],), START, dtype=torch.long)
        logits, maps = [], []
        for _ in range(self.max_length):
            step_logits, state, weights = self.model.decoder.step(token, state)
            token = step_logits.argmax(dim=-1)
            logits.append(step_logits)
            if weights is not None:
                maps.append(weights)
        if not maps:
            return (torch.stack(logits, dim=1),)
        return torch.stack(logits, dim=1), torch.stack(maps, dim=1)


def export_captioner_onnx(checkpoint: str | Path, out: str | Path) -> Path:
    """`out` (.onnx) from a captioner's training checkpoint or weights-only export."""
    captioner = Captioner.load(checkpoint)
    if not isinstance(captioner, Captioner):
        raise ValueError(f"{checkpoint} is already an ONNX model")
    return write_caption_onnx(captioner, out)


def write_caption_onnx(captioner: Captioner, out: str | Path) -> Path:
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


def greedy_caption_ids(logits: np.ndarray) -> tuple[list[list[int]], int]:
    """Per-step logits (B, T, V) -> each caption's ids up to and including <end> (all T without one), and the
    longest caption's steps: the PyTorch search stops there, once every caption has ended."""
    ids, steps = ids_through_end(logits.argmax(axis=-1), END)
    return ids, int(steps.max()) if len(steps) else 0


class OnnxCaptioner(BaseCaptioner):
    """The same captioning API as `Captioner` (caption, pixels, caption_pixels), run by ONNX Runtime; greedy
    search only."""

    def __init__(self, session, described: dict) -> None:  # noqa: ANN001
        self.session = session
        self.spec = CaptionModelSpec(**described["model_config"])
        self.tokenizer = WordTokenizer.from_dict(described["tokenizer"])

    @classmethod
    def load(cls, path: str | Path, threads: int = 0) -> OnnxCaptioner:
        """threads: ONNX Runtime intra-op threads; 0 lets ONNX Runtime choose (one per physical core)."""
        session = open_session(path, threads)
        return cls(session, read_description(session, CAPTION_ONNX_FORMAT, READABLE_CAPTION_ONNX_VERSIONS))

    def scores(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """The graph's raw outputs for (B, side, side, 3) uint8 model inputs, by output name."""
        names = [output.name for output in self.session.get_outputs()]
        outputs = self.session.run(names, {"images": np.ascontiguousarray(pixels, dtype=np.uint8)})
        return dict(zip(names, outputs, strict=True))

    def caption_pixels(self, pixels: np.ndarray, beam: int = 1) -> tuple[list[list[int]], np.ndarray | None]:
        if beam != 1:
            raise ValueError("an ONNX captioner decodes greedily; for --beam caption with the checkpoint instead")
        out = self.scores(pixels)
        ids, longest = greedy_caption_ids(out["logits"])
        maps = out.get("attention")
        return ids, None if maps is None else maps[:, :longest].reshape(len(ids), longest, *self.grid)
