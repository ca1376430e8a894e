"""The Python API: `Recognizer` reads captchas, `Captioner` captions images.

Example: `Recognizer.load("runs/captcha/best.pt").read("a8.png")` gives a `Reading` (word, confidence,
attention); `Captioner.load("runs/scenes/best.pt").caption(["x.png", "y.jpg"], beam=3)` a list of `Caption`.

This is the one place that picks the backend for a model file: PyTorch for a training checkpoint or a
weights-only export, ONNX Runtime for an .onnx export. Below it each backend's reader knows only its own files,
and the readers share the types in captcha/reading_types.py and captioning/reading_types.py, not each other.

The PyTorch readers are imported only when a file needs them: with the core alone installed (ONNX Runtime, NumPy,
Pillow; no 'train' extra), `Recognizer.load("model.onnx")` reads without torch, and a checkpoint is refused with
the name of the extra to install.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from imcaption.captcha.reading_types import READ_PRECISION, BaseRecognizer, Reading
from imcaption.deploy.onnx_reader import OnnxRecognizer
from imcaption.engine.model_files import is_onnx_file
from imcaption.engine.precision import check_precision
from imcaption.extras import needs_extra

if TYPE_CHECKING:
    from imcaption.captcha.recognizer import TorchRecognizer
    from imcaption.captioning.captioner import TorchCaptioner
    from imcaption.captioning.reading_types import BaseCaptioner, Caption

__all__ = ["Recognizer", "Reading", "Captioner", "Caption"]


def torch_recognizer() -> type[TorchRecognizer]:
    """The PyTorch recognizer class, or MissingExtra naming the extra that brings torch."""
    with needs_extra("reading a PyTorch checkpoint or export", "train"):
        from imcaption.captcha.recognizer import TorchRecognizer
    return TorchRecognizer


def torch_captioner() -> type[TorchCaptioner]:
    """The PyTorch captioner class, or MissingExtra naming the extra that brings it."""
    with needs_extra("captioning", "caption"):
        from imcaption.captioning.captioner import TorchCaptioner
    return TorchCaptioner


class Recognizer:
    """A captcha recognizer from any model file. `load` gives the PyTorch reader (`TorchRecognizer`) for a
    checkpoint or an export and an `OnnxRecognizer` for an .onnx file; both read with `read`, `inputs` and
    `decode_pixels`. `Recognizer(model, config, tokenizer, size, device)` wraps a model in memory, as
    `TorchRecognizer` does."""

    def __new__(cls, *args: Any, **kwargs: Any) -> TorchRecognizer:  # type: ignore[misc]
        return torch_recognizer()(*args, **kwargs)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", precision: str = READ_PRECISION) -> BaseRecognizer:
        """From a training checkpoint (best.pt, last.pt), a weights-only export, or an ONNX export (read by
        ONNX Runtime on the CPU); nothing else is needed. `precision`: "auto" (bf16 where the hardware has it,
        else fp32; fp32 for an ONNX model), "fp32" (reads exactly as training's validation measured) or "bf16"
        (the encoder in bf16, the decoder in fp32: faster where the CPU has bf16 in hardware, BENCHMARKS.md; a
        close call may go the other way)."""
        if not is_onnx_file(path):
            return torch_recognizer().load(path, device, precision)
        # An unknown precision is refused as for a checkpoint, then what ONNX Runtime cannot do here.
        check_precision(precision)
        if device != "cpu" or precision == "bf16":  # "auto" is fp32 for ONNX Runtime, on any CPU
            raise ValueError(f"an ONNX model runs in fp32 on the CPU here; got {device!r} in {precision}")
        return OnnxRecognizer.load(path)


class Captioner:
    """A captioner from any model file. `load` gives the PyTorch captioner (`TorchCaptioner`) for a checkpoint or
    an export and an `OnnxCaptioner` (greedy search only) for an .onnx file; both caption with `caption`.
    `Captioner(model, spec, tokenizer, device)` wraps a model in memory, as `TorchCaptioner` does."""

    def __new__(cls, *args: Any, **kwargs: Any) -> TorchCaptioner:  # type: ignore[misc]
        return torch_captioner()(*args, **kwargs)

    # The default is CAPTION_PRECISION, written out: captioning/reading_types.py imports torch, and this must not.
    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", precision: str = "fp32") -> BaseCaptioner:
        """From a training checkpoint, a weights-only export, or an ONNX export (read by ONNX Runtime on the
        CPU, greedy search only). `precision`: "fp32" (the default: captions exactly as training's validation
        scored), "bf16" (the encoder under bf16 autocast, the decoder in fp32) or "auto" (bf16 where the hardware
        has it; fp32 for an ONNX model)."""
        if not is_onnx_file(path):
            return torch_captioner().load(path, device, precision)
        check_precision(precision)  # refused by name as for a checkpoint, then what ONNX Runtime cannot do here
        if device != "cpu" or precision == "bf16":
            raise ValueError(f"an ONNX model runs in fp32 on the CPU here; got {device!r} in {precision}")
        # The captioner's shared types (its model spec) still import torch, so the ONNX captioner needs it too.
        with needs_extra("captioning", "caption"):
            from imcaption.deploy.caption_onnx_reader import OnnxCaptioner
        return OnnxCaptioner.load(path)


def __getattr__(name: str) -> Any:
    """`Caption` lives with the captioner's types, which import torch: loaded when first asked for."""
    if name == "Caption":
        with needs_extra("captioning", "caption"):
            from imcaption.captioning.reading_types import Caption
        return Caption
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
