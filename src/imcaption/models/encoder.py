"""A small from-scratch CNN that turns an image into a grid of feature vectors.

Sized for CPU throughput: three stride-2 convolutions bring the 96x192 default input down to 12x24 (64x128 to
8x16) before the widest layers run, and a last (2, 1) pooling keeps 24 (16) columns, enough for a CTC path over
5 letters. Square scene images use a (2, 2) pooling instead, for square cells.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from imcaption.models.config import EncoderConfig as EncoderConfig  # its home before config.py


def fuse_conv_batch_norm_blocks(module: nn.Module) -> None:
    """Fold the BatchNorm of every (conv, BatchNorm, ...) block in `module.layers` into its convolution, in
    place; puts `module` in eval mode."""
    module.eval()
    for index, block in enumerate(module.layers):
        if isinstance(block, nn.Sequential) and isinstance(block[1], nn.BatchNorm2d):
            module.layers[index] = nn.Sequential(fuse_conv_bn_eval(block[0], block[1]), *block[2:])


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class CentredPad(nn.Module):
    """The first layer's input once the normalization is folded into its convolution: pixels minus the mean,
    padded with zeros (which is what padding a normalized image gives), in `dtype`. Eager reading copies uint8 or
    float pixels straight into a zeroed buffer in the channels-last layout the convolution reads and subtracts
    the mean there, where a float conversion, a normalization and a pad each made a new tensor. Export and
    compilation see a subtraction and a pad, which ONNX has as operators."""

    def __init__(self, padding: int, mean: torch.Tensor, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.padding, self.dtype = padding, dtype
        self.register_buffer("mean", mean.flatten().clone())  # one value per channel
        # One value for every channel is subtracted as a Python number: faster, and no device read per batch.
        self.scalar_mean = float(mean.flatten()[0]) if bool((mean == mean.flatten()[0]).all()) else None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        p = self.padding
        if torch.compiler.is_compiling():
            centred = images.float() - self.mean.view(1, -1, 1, 1)
            return F.pad(centred, (p, p, p, p)).to(self.dtype)
        batch, channels, height, width = images.shape
        padded = torch.zeros((batch, height + 2 * p, width + 2 * p, channels), dtype=self.dtype, device=images.device)
        # A copy, then the subtraction in place: faster than one broadcast subtraction into the view, as measured in
        # a reading's profile (bench/infer_profile.py).
        # uint8 pixels and their difference from an integer mean are exact in bf16, so the order changes nothing.
        inside = padded[:, p : p + height, p : p + width]
        inside.copy_(images.permute(0, 2, 3, 1))
        inside.sub_(self.mean if self.scalar_mean is None else self.scalar_mean)
        return padded.permute(0, 3, 1, 2)


class FusedConvReLU(nn.Module):
    """Inference only: a convolution and the ReLU after it as one oneDNN call (the operator PyTorch's own
    compiler fuses the pair into), which saves the separate ReLU pass over each block's output, a visible share of
    a bf16 reading's profile (bench/infer_profile.py). `fuse_conv_relu` builds it only where that operator exists
    and gives the unfused result; export, compilation and other devices get the plain pair."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling() or x.device.type != "cpu":
            return torch.relu(self.conv(x))
        c = self.conv
        return torch.ops.mkldnn._convolution_pointwise(
            x, c.weight, c.bias, list(c.padding), list(c.stride), list(c.dilation), c.groups, "relu", [], ""
        )


def fuse_conv_relu(conv: nn.Conv2d) -> nn.Module:
    """FusedConvReLU(conv) where it reads as conv then ReLU do on a small input, else the plain pair."""
    plain = nn.Sequential(conv, nn.ReLU())
    try:
        fused = FusedConvReLU(conv)
        with torch.no_grad():
            probe = torch.rand(2, conv.in_channels, 9, 9, dtype=conv.weight.dtype, device=conv.weight.device)
            agrees = torch.allclose(fused(probe).float(), plain(probe).float(), rtol=1e-2, atol=1e-2)
    except (AttributeError, RuntimeError):  # no oneDNN, or an operator this PyTorch does not have
        return plain
    return fused if agrees else plain


class RowPairMax(nn.Module):
    """MaxPool2d((2, 1)) for inference: the larger of each pair of rows, as one elementwise maximum of two
    strided views: faster than the pooling operator, which also computes indices nobody reads."""

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():  # export: one pooling operator, which ONNX Runtime has a kernel for
            return F.max_pool2d(grid, (2, 1))
        return torch.maximum(grid[:, :, 0::2], grid[:, :, 1::2])


class ConvEncoder(nn.Module):
    """(B, 3, H, W) uint8-range floats -> (B, C, H/16, W/8) features plus a learned position code."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        if config.column_stride not in (8, 16):
            raise ValueError(f"column_stride must be 8 or 16, got {config.column_stride}")
        if config.height % 16 or config.width % config.column_stride:
            size = f"{config.height}x{config.width}"
            raise ValueError(f"input height must divide by 16 and width by {config.column_stride}, got {size}")
        c1, c2, c3, c4 = config.channels
        self.config = config
        self.layers = nn.Sequential(
            _conv(3, c1, 2),
            _conv(c1, c2, 2),
            _conv(c2, c3),
            _conv(c3, c4, 2),
            _conv(c4, c4),
            nn.MaxPool2d((2, config.column_stride // 8)),
        )
        # Attention must know where a feature sits to move left to right; convolutions alone do not say.
        self.position = nn.Parameter(torch.zeros(1, c4, *config.grid))
        self.register_buffer("mean", torch.tensor([0.8, 0.8, 0.8]).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor([0.25, 0.25, 0.25]).view(1, 3, 1, 1) * 255)
        self.normalizes_input = True  # False once fuse_batch_norm has folded it into the first convolution
        # Set by prepare_for_reading("bf16"): every layer runs in this format.
        self.reading_dtype: torch.dtype | None = None

    @property
    def channels(self) -> int:
        return self.config.channels[-1]

    def fuse_batch_norm(self, fold_input: bool = True) -> ConvEncoder:
        """For inference only: fold each BatchNorm into the convolution before it, and with `fold_input` the
        input normalization into the first convolution. The outputs stay the same (up to rounding) and each block
        makes one pass over its activations fewer; folding the input saves the full-resolution normalization.
        Puts the encoder in eval mode; a fused encoder cannot be trained or saved as a checkpoint."""
        fuse_conv_batch_norm_blocks(self)
        if fold_input:
            self._fold_input_normalization(torch.float32)
        return self

    def _fold_input_normalization(self, dtype: torch.dtype) -> None:
        """conv((x - mean) / std) as conv'(x - mean): the weights divided by std, the subtraction (and the zero
        padding a normalized image had) done by CentredPad. The mean is subtracted rather than folded into the
        bias so that the pixels the convolution reads stay small (-204 to 51) and exact in bf16: against raw
        0-255 pixels, bias and weights rounded to bf16 cancel badly (3,000 validation images: 13 readings
        differed from fp32)."""
        block = self.layers[0]
        if not (self.normalizes_input and isinstance(block[0], nn.Conv2d)):
            return
        conv = block[0]
        folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, padding=0, bias=True)
        with torch.no_grad():
            folded.weight.copy_(conv.weight / self.std.view(1, 3, 1, 1))
            folded.bias.copy_(conv.bias if conv.bias is not None else torch.zeros(conv.out_channels))
        pad = CentredPad(conv.padding[0], self.mean, dtype)
        self.layers[0] = nn.Sequential(nn.Sequential(pad, folded), *block[1:])
        self.normalizes_input = False

    def prepare_for_reading(self, precision: str = "fp32") -> ConvEncoder:
        """For inference only: fuse_batch_norm with the input folded, the row pooling as a pairwise maximum, and
        with "bf16" every layer in bfloat16 (the pixels enter centred, the features come out in fp32): the
        convolutions run much faster in bf16 where the CPU has it in hardware (AMX; bench/infer_profile.py
        --precision measures it)."""
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        fuse_conv_batch_norm_blocks(self)
        self._fold_input_normalization(dtype)
        if isinstance(self.layers[-1], nn.MaxPool2d) and self.layers[-1].kernel_size == (2, 1):
            self.layers[-1] = RowPairMax()
        if dtype != torch.float32:
            self.reading_dtype = dtype
            # The convolutions only: CentredPad's mean stays fp32, so the subtraction stays exact.
            for conv in (m for m in self.layers.modules() if isinstance(m, nn.Conv2d)):
                conv.to(dtype)
        self._fuse_relus()
        return self

    def _fuse_relus(self) -> None:
        """Each (convolution, ReLU) block as one fused call where the CPU's oneDNN has it (FusedConvReLU)."""
        for index, block in enumerate(self.layers):
            if not (isinstance(block, nn.Sequential) and len(block) == 2 and isinstance(block[1], nn.ReLU)):
                continue
            head = block[0]
            if isinstance(head, nn.Conv2d):
                self.layers[index] = fuse_conv_relu(head)
            elif isinstance(head, nn.Sequential) and isinstance(head[-1], nn.Conv2d):  # (CentredPad, conv)
                self.layers[index] = nn.Sequential(*head[:-1], fuse_conv_relu(head[-1]))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: 0-255 floats, or uint8 once prepared for reading (the first layer's pad converts them)
        -> (B, C, H/16, W/8) features with the position code."""
        return self._convolved(images) + self.position

    def cells(self, images: torch.Tensor) -> torch.Tensor:
        """The feature grid as a sequence of cells, row by row: (B, H/16 * W/8, C), what attention reads.

        The move to channels last comes before the position code is added, so that in an ONNX export it
        directly follows the last layer, where ONNX Runtime folds it into the step that brings the features out
        of its blocked convolution layout (one pass over them fewer). In PyTorch's channels-last memory it is
        a view either way."""
        grid = self._convolved(images).permute(0, 2, 3, 1)
        return (grid + self.position.permute(0, 2, 3, 1)).flatten(1, 2)

    def _convolved(self, images: torch.Tensor) -> torch.Tensor:
        """The layers' output in fp32, without the position code."""
        # One fused pass (shift + pixels * scale) instead of a subtract and a divide, which stood out in a bf16
        # reading's profile (bench/infer_profile.py) where the normalization is not folded into the first convolution.
        if self.normalizes_input:
            x = torch.addcmul(-self.mean / self.std, images.float(), 1 / self.std)
        else:
            x = images
        if self.reading_dtype is None:
            return self.layers(x)
        return self.layers(x).float()  # the first layer's CentredPad hands bf16 on
