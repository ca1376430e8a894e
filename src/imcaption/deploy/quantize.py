"""An int8 ONNX recognizer: the fp32 export with its convolutions quantized by ONNX Runtime's static quantizer.

Only the encoder's convolutions are quantized. They are most of a reading's arithmetic, and ONNX Runtime runs
them much faster in int8 (bench/results/onnx_int8_*.json). The decoding steps stay fp32: their matrices
are small, so int8 would save little there and cost accuracy in every step. Weights are quantized per output
channel (signed), activations per tensor (unsigned), with ranges calibrated on training images, never on the
validation or test split. The file keeps the fp32 export's description, marked `"precision": "int8"`."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

from imcaption.files import write_atomically
from imcaption.images import ImageSize, load_image, to_model_input

CALIBRATION_IMAGES = 512
CALIBRATION_BATCH = 64
QUANTIZED_OPS = ["Conv"]


def calibration_pixels(data: str | Path, size: ImageSize, count: int = CALIBRATION_IMAGES) -> np.ndarray:
    """(count, H, W, 3) uint8: training images of the dataset at `data`, evenly spread over its training split."""
    from imcaption.captcha.dataset import CaptchaDataset

    if count < 1:
        raise ValueError(f"calibration needs at least one image, got {count}")
    dataset = CaptchaDataset.open(data)
    train = dataset.split("train").indices
    picked = np.linspace(0, len(train) - 1, num=min(count, len(train))).round().astype(int)
    return np.stack([to_model_input(load_image(dataset.image_path(train[i])), size) for i in picked])


def _batches(pixels: np.ndarray) -> Iterator[dict[str, np.ndarray]]:
    for start in range(0, len(pixels), CALIBRATION_BATCH):
        yield {"images": pixels[start : start + CALIBRATION_BATCH]}


def quantize_convolutions(fp32_onnx: str | Path, out: str | Path, pixels: np.ndarray) -> Path:
    """`out`: the recognizer `fp32_onnx` with int8 convolutions whose activation ranges come from `pixels`."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Calibration(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = _batches(pixels)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    out = Path(out)
    with tempfile.TemporaryDirectory() as folder:
        quantized = Path(folder) / "int8.onnx"
        # The quantizer logs a suggestion to run its pre-processing, which brings no speed here (measured).
        logging.disable(logging.WARNING)
        try:
            quantize_static(
                str(fp32_onnx),
                str(quantized),
                Calibration(),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=QUANTIZED_OPS,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
        finally:
            logging.disable(logging.NOTSET)
        model = onnx.load(quantized)
    props = {prop.key: prop.value for prop in model.metadata_props}
    description = json.loads(props["imcaption"])
    description["precision"] = "int8"
    description["calibration_images"] = len(pixels)
    onnx.helper.set_model_props(model, {**props, "imcaption": json.dumps(description)})
    # One rename publishes the graph and its int8 description together: a kill leaves the old file or the new.
    write_atomically(out, lambda temp: write_model(model, temp))
    return out


def write_model(model: onnx.ModelProto, path: Path) -> None:
    path.write_bytes(model.SerializeToString())


def quantize_export(fp32_onnx: str | Path, out: str | Path, data: str | Path,
                    count: int = CALIBRATION_IMAGES) -> Path:  # fmt: skip
    """`out`: the fp32 export `fp32_onnx` with int8 convolutions, calibrated on `count` training images of the
    dataset at `data`, at the input size the export reads."""
    from imcaption.deploy.onnx_reader import OnnxRecognizer

    size = OnnxRecognizer.load(fp32_onnx, threads=1).size
    return quantize_convolutions(fp32_onnx, out, calibration_pixels(data, size, count))


def export_int8_onnx(checkpoint: str | Path, out: str | Path, data: str | Path,
                     count: int = CALIBRATION_IMAGES) -> Path:  # fmt: skip
    """`out` (.onnx): the checkpoint's recognizer with int8 convolutions, calibrated on `count` training images
    of the dataset at `data`."""
    from imcaption.deploy.onnx_export import export_onnx

    with tempfile.TemporaryDirectory() as folder:
        return quantize_export(export_onnx(checkpoint, Path(folder) / "fp32.onnx"), out, data, count)
