"""The model behind the service: a captcha recognizer (run by ONNX Runtime) or a captioner (PyTorch), both
reduced to one function from a batch of model-sized pixels to one result per image."""

from __future__ import annotations

import tempfile
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
    from imcaption.deploy.onnx_export import export_onnx
    from imcaption.deploy.onnx_reader import OnnxRecognizer, is_onnx_file

    if is_onnx_file(path):
        reader = OnnxRecognizer.load(path)
    else:  # served through ONNX Runtime all the same: faster, and it gives each character's probability
        with tempfile.TemporaryDirectory() as folder:
            reader = OnnxRecognizer.load(export_onnx(path, Path(folder) / "model.onnx"))

    def run(pixels: np.ndarray) -> list[dict[str, Any]]:
        decoded = reader.decode_pixels(pixels)
        maps = decoded.attention
        return [
            {"word": word, "confidence": conf, "characters": chars, "attention": None if maps is None else maps[n]}
            for n, (word, conf, chars) in enumerate(
                zip(decoded.words, decoded.confidences, decoded.characters or [], strict=True)
            )
        ]

    info = {"task": "read", "model": reader.config.kind, "backend": "onnxruntime", "input": reader.size.tag}
    return ServedModel("read", reader.size, run, info)


def _captioner(path: Path) -> ServedModel:
    from imcaption.api import Captioner

    captioner = Captioner.load(path)
    side = captioner.spec.image_size
    attends = captioner.spec.decoder == "sat"

    def run(pixels: np.ndarray) -> list[dict[str, Any]]:
        ids, maps = captioner.caption_inputs(captioner.inputs(pixels))
        grids = maps.view(*maps.shape[:2], *captioner.grid).numpy() if maps is not None and attends else None
        return [
            {"caption": captioner.tokenizer.decode(row), "attention": None if grids is None else grids[n]}
            for n, row in enumerate(ids)
        ]

    info = {"task": "caption", "model": captioner.spec.decoder, "backend": "pytorch", "input": f"{side}x{side}"}
    return ServedModel("caption", ImageSize(side, side), run, info)


def load_served_model(path: str | Path) -> ServedModel:
    """A recognizer (checkpoint, export or .onnx) or a captioner (checkpoint or export), told apart by content."""
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
