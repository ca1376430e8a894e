"""The comparison head: the same CNN, columns read by a bidirectional GRU, trained with CTC."""

from __future__ import annotations

import torch
from torch import nn

from imcaption.models.encoder import ConvEncoder


class CTCRecognizer(nn.Module):
    def __init__(self, encoder: ConvEncoder, vocab_size: int, hidden: int) -> None:
        super().__init__()
        self.encoder = encoder
        rows = encoder.config.grid[0]
        self.column = nn.Linear(encoder.channels * rows, hidden)
        self.rnn = nn.GRU(hidden, hidden // 2, batch_first=True, bidirectional=True)
        # Class 0 (<pad>) doubles as the CTC blank; <start>/<end> are never emitted.
        self.output = nn.Linear(hidden, vocab_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """-> log-probabilities (B, T, V) over the T feature columns."""
        grid = self.encoder(images)
        columns = grid.flatten(1, 2).transpose(1, 2)
        sequence, _ = self.rnn(torch.relu(self.column(columns)))
        return torch.log_softmax(self.output(sequence), dim=-1)
