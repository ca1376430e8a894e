"""The model behind the service: a captcha recognizer (run by ONNX Runtime) or a captioner (PyTorch, or ONNX
Runtime for an .onnx export), both reduced to one function from a batch of model-sized pixels to one result per
image.

An .onnx recognizer is served without torch (the 'serve' extra over the core); torch is imported only for a
checkpoint or an export, which the 'train' extra brings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imcaption.captcha.reading_types import READ_PRECISION, BaseRecognizer
from imcaption.deploy.onnx_reader import OnnxRecognizer
from imcaption.engine.model_files import CheckpointError, is_onnx_file
from imcaption.engine.precision import resolve_precision
from imcaption.images import ImageSize
from imcaption.serve.settings import check_backend


@dataclass
class ServedModel:
    task: str  # "read" (a captcha recognizer) or "caption"
    size: ImageSize
    run: Callable[[np.ndarray], list[dict[str, Any]]]
    info: dict[str, Any] = field(default_factory=dict)


def _recognizer_reader(path: Path, backend: str, threads: int) -> BaseRecognizer:
    check_backend(backend)
    if is_onnx_file(path):
        if backend == "pytorch":
            raise ValueError(f"{path} is an ONNX model: it runs on onnxruntime; serve its checkpoint for pytorch")
        # The model's threads sleep between calls: the cores are the HTTP server's then.
        return OnnxRecognizer.load(path, threads, spin=False)
    import torch

    from imcaption.api import Recognizer
    from imcaption.deploy.onnx_export import onnx_reader_for

    if backend == "auto":
        bf16 = resolve_precision(READ_PRECISION, torch.device("cpu")) == "bf16"
        backend = "pytorch" if bf16 else "onnxruntime"
    return onnx_reader_for(path, spin=False, threads=threads) if backend == "onnxruntime" else Recognizer.load(path)


def _recognizer(path: Path, backend: str, threads: int) -> ServedModel:
    reader = _recognizer_reader(path, backend, threads)

    def run(pixels: np.ndarray) -> list[dict[str, Any]]:
        decoded = reader.decode_pixels(pixels)
        maps = None if decoded.attention is None else np.asarray(decoded.attention)
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

    if isinstance(reader, OnnxRecognizer):
        used = "onnxruntime" if reader.precision == "fp32" else f"onnxruntime ({reader.precision})"
    else:
        used = f"pytorch ({reader.precision})"
    info = {"task": "read", "model": reader.config.kind, "backend": used, "input": reader.size.tag}
    return ServedModel("read", reader.size, run, info)


def _captioner(path: Path) -> ServedModel:
    from imcaption.api import Captioner
    from imcaption.captioning.reading_types import own_steps
    from imcaption.deploy.caption_onnx_reader import OnnxCaptioner

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


def load_served_model(path: str | Path, backend: str = "auto", threads: int = 0) -> ServedModel:
    """A recognizer or a captioner (checkpoint, export or .onnx), told apart by content. backend: what runs a
    recognizer (`settings.RECOGNIZER_BACKENDS`); a captioner runs on PyTorch, or ONNX Runtime for an .onnx file.
    threads: ONNX Runtime's threads for a recognizer (0: one per core); PyTorch's are the process's own
    (`torch.set_num_threads`)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model not found: {path}")
    try:
        return _recognizer(path, backend, threads)
    except CheckpointError as not_recognizer:
        try:
            return _captioner(path)
        except CheckpointError:
            raise not_recognizer from None
