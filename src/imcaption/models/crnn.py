"""The peer: a standard captcha CRNN as the users of captcha_trainer / ddddocr train it, built from the published
description of captcha_trainer's default network (CNN5 + BiLSTM + CTC), not from its code: grayscale input
scaled to [0, 1], five convolution blocks of 32, 64, 128, 128 and 64 filters with kernels 7, 5, 3, 3, 3, each
with BatchNorm, LeakyReLU and max pooling, then a two-layer bidirectional LSTM over the columns and CTC.
The pooling is fitted to a 64-pixel-high input: 64x128 -> 4 rows x 16 columns, 16 CTC steps for 5 letters."""

from __future__ import annotations

import torch
from torch import nn

from imcaption.models.ctc import CTCRecognizer
from imcaption.models.encoder import fuse_conv_batch_norm_blocks

FILTERS = (32, 64, 128, 128, 64)
KERNELS = (7, 5, 3, 3, 3)
POOLS = ((2, 2), (2, 2), (2, 2), (2, 1), (1, 1))
LSTM_UNITS = 64


def _block(c_in: int, c_out: int, kernel: int, pool: tuple[int, int]) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(0.01, inplace=True),
    ]
    if pool != (1, 1):
        layers.append(nn.MaxPool2d(pool))
    return nn.Sequential(*layers)


class CNN5(nn.Module):
    """(B, 3, H, W) 0-255 -> (B, 64, H/16, W/8), read in gray as the peer does."""

    def __init__(self) -> None:
        super().__init__()
        channels = (1, *FILTERS)
        self.layers = nn.Sequential(
            *(_block(channels[i], channels[i + 1], KERNELS[i], POOLS[i]) for i in range(len(FILTERS)))
        )
        self.reading_dtype: torch.dtype | None = None  # set by prepare_for_reading("bf16")

    @property
    def channels(self) -> int:
        return FILTERS[-1]

    def fuse_batch_norm(self, fold_input: bool = True) -> CNN5:
        """For inference only (see ConvEncoder.fuse_batch_norm). `fold_input` is accepted for the same signature:
        the gray conversion has no normalization to fold."""
        fuse_conv_batch_norm_blocks(self)
        return self

    def prepare_for_reading(self, precision: str = "fp32") -> CNN5:
        """For inference only (see ConvEncoder.prepare_for_reading): BatchNorm folded, and with "bf16" every
        convolution in bfloat16 (the gray input is already scaled to [0, 1], so the first one can be too)."""
        fuse_conv_batch_norm_blocks(self)
        if precision == "bf16":
            self.reading_dtype = torch.bfloat16
            self.layers.to(self.reading_dtype)
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        gray = images.float().mean(dim=1, keepdim=True) / 255
        if self.reading_dtype is None:
            return self.layers(gray)
        return self.layers(gray.to(self.reading_dtype)).float()


class CRNNRecognizer(CTCRecognizer):
    """CNN5 columns -> two-layer BiLSTM -> per-column classes, trained with CTC (blank = <pad>); decoding and
    the exact lexicon search are the `ctc` model's."""

    def __init__(self, height: int, vocab_size: int) -> None:
        nn.Module.__init__(self)
        if height != 64:
            raise ValueError(f"the crnn peer reads 64-pixel-high images, as its users train it; got --height {height}")
        self.encoder = CNN5()
        rows = height // 16
        self.rnn = nn.LSTM(FILTERS[-1] * rows, LSTM_UNITS, num_layers=2, batch_first=True, bidirectional=True)
        self.output = nn.Linear(2 * LSTM_UNITS, vocab_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """-> log-probabilities (B, T, V) over the T feature columns."""
        columns = self.encoder(images).flatten(1, 2).transpose(1, 2)
        sequence, _ = self.rnn(columns)
        return torch.log_softmax(self.output(sequence).float(), dim=-1)  # fp32 under bf16 autocast too
