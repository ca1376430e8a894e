"""The model behind the service: a captcha recognizer (run by ONNX Runtime) or a captioner (PyTorch, or ONNX
Runtime for an .onnx export), both reduced to one function from a batch of model-sized pixels to one result per
image."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imcaption.engine.checkpoint import CheckpointError
from imcaption.images import ImageSize


@dataclass
class ServedModel:
    task: str  # "read" (a captcha recognizer) or "caption"
    size: ImageSize
    run: Callable[[np.ndarray], list[dict[str, Any]]]
    info: dict[str, Any] = field(default_factory=dict)


def _recognizer(path: Path) -> ServedModel:
    from imcaption.deploy.onnx_export import onnx_reader_for

    # A checkpoint is served through ONNX Runtime all the same: faster, and it gives each letter's probability.
    reader = onnx_reader_for(path)

    def run(pixels: np.ndarray) -> list[dict[str, Any]]:
        decoded = reader.decode_pixels(pixels)
        maps = decoded.attention
        return [
            {
                "word": word,
                "confidence": conf,
                "char_confidences": chars,
                "attention": None if maps is None else maps[n],
            }
            for n, (word, conf, chars) in enumerate(
                zip(decoded.words, decoded.confidences, decoded.char_confidences or [], strict=True)
            )
        ]

    info = {"task": "read", "model": reader.config.kind, "backend": "onnxruntime", "input": reader.size.tag}
    return ServedModel("read", reader.size, run, info)


def _captioner(path: Path) -> ServedModel:
    from imcaption.api import Captioner
    from imcaption.captioning.captioner import own_steps
    from imcaption.deploy.caption_onnx import OnnxCaptioner

    captioner = Captioner.load(path)
    side = captioner.spec.image_size

    def run(pixels: np.ndarray) -> list[dict[str, Any]]:
        ids, grids = captioner.caption_pixels(pixels)
        return [
            {
                "caption": captioner.tokenizer.decode(row),
                "attention": None if grids is None else grids[n][: own_steps(row)],
            }
            for n, row in enumerate(ids)
        ]

    backend = "onnxruntime" if isinstance(captioner, OnnxCaptioner) else "pytorch"
    info = {"task": "caption", "model": captioner.spec.decoder, "backend": backend, "input": f"{side}x{side}"}
    return ServedModel("caption", ImageSize(side, side), run, info)


def load_served_model(path: str | Path) -> ServedModel:
    """A recognizer or a captioner (checkpoint, export or .onnx), told apart by content."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model not found: {path}")
    try:
        return _recognizer(path)
    except CheckpointError as not_recognizer:
        try:
            return _captioner(path)
        except CheckpointError:
            raise not_recognizer from None
