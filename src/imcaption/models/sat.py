"""Show, Attend and Tell for characters: CNN grid, additive attention, GRU decoder."""

from __future__ import annotations

import torch
from torch import nn

from imcaption.models.attention import AdditiveAttention
from imcaption.models.encoder import ConvEncoder
from imcaption.text.char_tokenizer import START


class SATRecognizer(nn.Module):
    def __init__(
        self, encoder: ConvEncoder, vocab_size: int, hidden: int, embed: int, attention: int, max_length: int
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.max_length = max_length
        features = encoder.channels
        self.embedding = nn.Embedding(vocab_size, embed)
        self.attention = AdditiveAttention(features, hidden, attention)
        self.init_hidden = nn.Linear(features, hidden)
        self.cell = nn.GRUCell(embed + features, hidden)
        self.output = nn.Sequential(nn.Linear(hidden + features, hidden), nn.ReLU(), nn.Linear(hidden, vocab_size))

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> features (B, N, F), their attention projection, the first hidden state."""
        grid = self.encoder(images)
        features = grid.flatten(2).transpose(1, 2)
        hidden = torch.tanh(self.init_hidden(features.mean(dim=1)))
        return features, self.attention.project(features), hidden

    def step(
        self, token: torch.Tensor, hidden: torch.Tensor, features: torch.Tensor, projected: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One decoding step -> logits (B, V), new hidden (B, H), attention weights (B, N)."""
        context, weights = self.attention(features, projected, hidden)
        hidden = self.cell(torch.cat([self.embedding(token), context], dim=-1), hidden)
        logits = self.output(torch.cat([hidden, context], dim=-1))
        return logits, hidden, weights

    def forward(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: step t reads target t-1 (<start> first). targets (B, T) -> logits (B, T, V)."""
        features, projected, hidden = self.encode(images)
        token = torch.full((images.shape[0],), START, dtype=torch.long, device=images.device)
        logits = []
        for t in range(targets.shape[1]):
            step_logits, hidden, _ = self.step(token, hidden, features, projected)
            logits.append(step_logits)
            token = targets[:, t]
        return torch.stack(logits, dim=1)
