"""A trained recognizer as one ONNX graph: uint8 pixels in, every decoding step's scores out.

The greedy decoding loop is unrolled inside the graph (max_length + 1 steps, each feeding back its own argmax),
rather than exporting the encoder and one step for a runtime loop to drive: one `session.run` per batch keeps
the Python overhead out of the per-step path, the graph stays a plain feed-forward one that ONNX Runtime can
fuse end to end, and words of at most 5 letters make the unrolled graph small. The price is that only greedy
decoding is in the graph; beam search and the lexicon stay with the PyTorch backend.

Everything needed to use the file (tokenizer, input size, what the outputs mean) is in its metadata, so the
.onnx file alone is a complete model, like a checkpoint.
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
import warnings
from pathlib import Path

import torch
import torch.ao.quantization.fx._decomposed  # registers torch.ops.quantized_decomposed
import torch.nn.functional as F
from torch import nn

from imcaption.captcha.recognizer import TorchRecognizer
from imcaption.deploy.onnx_reader import ONNX_FORMAT, ONNX_FORMAT_VERSION, OnnxRecognizer
from imcaption.engine.checkpoint import is_onnx_file
from imcaption.files import write_atomically
from imcaption.models.encoder import CentredPad, FusedConvReLU
from imcaption.text.char_tokenizer import START
from imcaption.version import __version__

OPSET = 18
# What the graph's scores are: per-step logits of an autoregressive or parallel decoder, or per-column CTC
# log-probabilities.
STEP_DECODERS = ("sat", "par")
CTC_DECODERS = ("ctc", "crnn")


class InterleavedInputConv(nn.Module):
    """An encoder's first layer (centring, padding, convolution, ReLU) for export, reading (B, H, W, C) uint8
    images as they arrive.

    Viewed as one channel of H rows of W*C values, the image gives a (kh, kw*C) kernel moving sw*C values at a
    time the same sums as the (kh, kw) kernel over C channels moving sw pixels, so the graph needs no transpose
    to (B, C, H, W); and one DequantizeLinear, with the mean as its zero point, converts and centres the pixels
    where a Cast and a Sub each made a pass over the batch."""

    def __init__(self, conv: nn.Conv2d, padding: int, zero_point: int, relu: bool) -> None:
        super().__init__()
        out_channels, channels, kernel_height, _ = conv.weight.shape
        # weight[o, c, y, x] -> [o, 0, y, x * C + c]: channel c of the kernel's pixel x, where the row holds it.
        weight = conv.weight.detach().permute(0, 2, 3, 1).reshape(out_channels, 1, kernel_height, -1)
        self.weight = nn.Parameter(weight.contiguous(), requires_grad=False)
        bias = conv.bias.detach().clone() if conv.bias is not None else torch.zeros(out_channels)
        self.bias = nn.Parameter(bias, requires_grad=False)
        self.stride = (conv.stride[0], conv.stride[1] * channels)
        self.padding = (padding, padding * channels)
        self.zero_point, self.relu = zero_point, relu

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        batch, height, width, channels = images.shape
        rows = images.reshape(batch, 1, height, width * channels)
        centred = torch.ops.quantized_decomposed.dequantize_per_tensor(rows, 1.0, self.zero_point, 0, 255, torch.uint8)
        out = F.conv2d(centred, self.weight, self.bias, self.stride, self.padding)
        return torch.relu(out) if self.relu else out


def _unnested(module: nn.Module) -> list[nn.Module]:
    """The modules an nn.Sequential (nested or not) runs, in order."""
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in _unnested(child)]
    return [module]


def interleave_input(encoder: nn.Module) -> bool:
    """Make InterleavedInputConv the first layer of a reading-form encoder (`prepare_for_reading` or
    `fuse_batch_norm`: CentredPad, a convolution, a ReLU), in place. False, and nothing changed, for any other
    first layer or a mean that is not one whole number for every channel (the zero point must be a uint8)."""
    layers = getattr(encoder, "layers", None)
    if not isinstance(layers, nn.Sequential) or len(layers) == 0:
        return False
    parts = _unnested(layers[0])
    if len(parts) == 2 and isinstance(parts[1], FusedConvReLU):
        parts = [parts[0], parts[1].conv, nn.ReLU()]
    if [type(part) for part in parts] not in ([CentredPad, nn.Conv2d], [CentredPad, nn.Conv2d, nn.ReLU]):
        return False
    pad, conv, relu = parts[0], parts[1], len(parts) == 3
    mean = pad.scalar_mean
    plain = conv.groups == 1 and conv.dilation == (1, 1) and conv.padding == (0, 0)
    if mean is None or not (float(mean).is_integer() and 0 <= mean <= 255) or not plain:
        return False
    layers[0] = InterleavedInputConv(conv, pad.padding, int(mean), relu)
    return True


def for_export(model: nn.Module) -> nn.Module:
    """A copy of `model` to export: contiguous memory, and InterleavedInputConv first where its encoder allows."""
    model = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    if hasattr(model, "encoder"):
        interleave_input(model.encoder)
    return model


def reads_pixels(model: nn.Module) -> bool:
    """Whether `model` reads (B, H, W, C) uint8 images as they are (InterleavedInputConv), rather than
    (B, C, H, W) floats."""
    return any(isinstance(module, InterleavedInputConv) for module in model.modules())


def model_input(images: torch.Tensor, takes_pixels: bool) -> torch.Tensor:
    """(B, H, W, C) uint8 images as a model reads them: as they are where it `reads_pixels`, else (B, C, H, W)
    floats."""
    return images if takes_pixels else images.permute(0, 3, 1, 2).float()


class GreedyGraph(nn.Module):
    """(B, H, W, 3) uint8 -> scores (B, T, V) and, for attention models, attention (B, T, grid cells)."""

    def __init__(self, model: nn.Module, kind: str) -> None:
        super().__init__()
        self.model, self.kind = model, kind
        self.takes_pixels = reads_pixels(model)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        pixels = model_input(images, self.takes_pixels)
        if self.kind in CTC_DECODERS:
            return (self.model(pixels),)
        if self.kind == "par":  # every position in one pass; nothing to feed back
            return self.model(pixels)
        state = self.model.start(pixels)
        return unrolled_greedy(self.model, state, pixels.shape[0], START, self.model.max_length + 1)


def unrolled_greedy(
    decoder: nn.Module, state: dict[str, torch.Tensor], batch: int, start: int, steps: int
) -> tuple[torch.Tensor, ...]:
    """Greedy decoding as an export sees it, for both tasks: `steps` calls of `decoder.step` from `state`, each
    feeding back its own argmax (no stop at <end>: the reader cuts the words) -> logits (B, steps, V) and, where
    the decoder attends, attention (B, steps, N)."""
    token = torch.full((batch,), start, dtype=torch.long)
    logits, maps = [], []
    for _ in range(steps):
        step_logits, state, weights = decoder.step(token, state)
        token = step_logits.argmax(dim=-1)
        logits.append(step_logits)
        if weights is not None:
            maps.append(weights)
    if not maps:
        return (torch.stack(logits, dim=1),)
    return torch.stack(logits, dim=1), torch.stack(maps, dim=1)


def output_names(kind: str) -> list[str]:
    return ["log_probs"] if kind in CTC_DECODERS else ["logits", "attention"]


def describe(recognizer: TorchRecognizer) -> dict:
    """The metadata a reader needs besides the graph."""
    config = recognizer.config
    return {
        "format": ONNX_FORMAT,
        "format_version": ONNX_FORMAT_VERSION,
        "imcaption": __version__,
        "kind": config.kind,
        "decoding": "ctc" if config.kind in CTC_DECODERS else "steps",
        "tokenizer": recognizer.tokenizer.to_dict(),
        "image_size": {"height": recognizer.size.height, "width": recognizer.size.width},
        "grid": list(config.encoder.grid) if config.kind in STEP_DECODERS else None,
        "model_config": config.to_dict(),
    }


def write_onnx(recognizer: TorchRecognizer, out: str | Path) -> Path:
    """Write `recognizer` (as `TorchRecognizer.load` gives it: eval mode, BatchNorm folded) to `out` as ONNX: the
    batch dimension dynamic, the model's description in the file's metadata."""
    graph = GreedyGraph(for_export(recognizer.model), recognizer.config.kind).eval()
    size = recognizer.size
    example = torch.zeros(2, size.height, size.width, 3, dtype=torch.uint8)
    return export_graph(graph, example, output_names(recognizer.config.kind), describe(recognizer), out)


def export_graph(graph: nn.Module, example: torch.Tensor, outputs: list[str], description: dict,
                 out: str | Path) -> Path:  # fmt: skip
    """`graph` (one input, "images", its batch dimension dynamic) as a checked ONNX file at `out`, with
    `description` as JSON in the metadata under "imcaption"."""
    import onnx

    # The exporter's notes on its own internals (missing torchvision ops, ...) are not the user's business.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph,
            (example,),
            input_names=["images"],
            output_names=outputs,
            dynamic_shapes={"images": {0: torch.export.Dim("batch", min=1, max=65536)}},
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
    model = program.model_proto
    onnx.helper.set_model_props(model, {"imcaption": json.dumps(description)})
    onnx.checker.check_model(model)
    write_atomically(out, lambda temp: onnx.save_model(model, str(temp)))
    return Path(out)


def onnx_reader_for(model: str | Path, spin: bool = True, threads: int = 0) -> OnnxRecognizer:
    """An ONNX Runtime reader for `model`: an .onnx file as it is, a checkpoint or export converted through a
    temporary .onnx file. spin: as `open_session`."""
    if is_onnx_file(model):
        return OnnxRecognizer.load(model, threads, spin=spin)
    with tempfile.TemporaryDirectory() as folder:
        return OnnxRecognizer.load(export_onnx(model, Path(folder) / "model.onnx"), threads, spin=spin)


def export_onnx(checkpoint: str | Path, out: str | Path) -> Path:
    """`out` (.onnx) from a training checkpoint or a weights-only export."""
    if is_onnx_file(checkpoint):
        raise ValueError(f"{checkpoint} is already an ONNX model")
    return write_onnx(TorchRecognizer.load(checkpoint, precision="fp32"), out)  # ONNX Runtime reads fp32 on the CPU
