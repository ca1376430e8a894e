"""A small from-scratch CNN that turns an image into a grid of feature vectors.

Sized for CPU throughput: three stride-2 convolutions bring the 80x160 default input down to 10x20 (64x128 to
8x16) before the widest layers run, and a last (2, 1) pooling keeps 20 (16) columns, enough for a CTC path over
5 letters. Square scene
images use a (2, 2) pooling instead, for square cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


@dataclass(frozen=True)
class EncoderConfig:
    height: int = 64
    width: int = 128
    channels: tuple[int, int, int, int] = (16, 32, 64, 128)
    # 8 keeps twice as many columns as rows, for words read left to right; 16 gives square cells (scenes).
    column_stride: int = 8

    @property
    def grid(self) -> tuple[int, int]:
        return self.height // 16, self.width // self.column_stride


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

    @property
    def channels(self) -> int:
        return self.config.channels[-1]

    def fuse_batch_norm(self) -> ConvEncoder:
        """For inference only: fold each BatchNorm into the convolution before it. The outputs stay the same
        (up to rounding) and each block makes one pass over its activations fewer. Puts the encoder in eval mode;
        a fused encoder cannot be trained or saved as a checkpoint."""
        fuse_conv_batch_norm_blocks(self)
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - self.mean) / self.std
        return self.layers(x) + self.position
