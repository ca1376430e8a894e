"""Captioning with ONNX Runtime from an exported .onnx file (see caption_onnx.py): the graph gives every step's
logits and, for sat, attention; this module picks the words from them as the PyTorch greedy search does.

Apart from the export so that reading imports neither the exporter nor torch's quantization and ONNX modules.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imcaption.captioning.model_spec import CaptionModelSpec
from imcaption.captioning.reading_types import BaseCaptioner
from imcaption.deploy.onnx_reader import ids_through_end, open_session, read_description
from imcaption.text.word_tokenizer import END, WordTokenizer

CAPTION_ONNX_FORMAT = "imcaption-onnx-captioner"
CAPTION_ONNX_VERSION = 1
READABLE_CAPTION_ONNX_VERSIONS = (1,)


def greedy_caption_ids(logits: np.ndarray) -> tuple[list[list[int]], int]:
    """Per-step logits (B, T, V) -> each caption's ids up to and including <end> (all T without one), and the
    longest caption's steps: the PyTorch search stops there, once every caption has ended."""
    ids, steps = ids_through_end(logits.argmax(axis=-1), END)
    return ids, int(steps.max()) if len(steps) else 0


class OnnxCaptioner(BaseCaptioner):
    """The same captioning API as `Captioner` (caption, pixels, caption_pixels), run by ONNX Runtime; greedy
    search only."""

    def __init__(self, session, described: dict) -> None:
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
