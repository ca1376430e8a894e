"""Bahdanau (additive) attention."""

from __future__ import annotations

import torch
from torch import nn


class AdditiveAttention(nn.Module):
    def __init__(self, feature_dim: int, hidden_dim: int, attention_dim: int) -> None:
        super().__init__()
        self.feature_proj = nn.Linear(feature_dim, attention_dim)
        self.hidden_proj = nn.Linear(hidden_dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """Done once per image, not once per step."""
        return self.feature_proj(features)

    def forward(
        self, features: torch.Tensor, projected: torch.Tensor, hidden: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """features (B, N, F), projected (B, N, A), hidden (B, H) -> context (B, F), weights (B, N)."""
        # tanh in place on the fresh sum: one (B, N, A) tensor per step fewer to allocate and write.
        scores = self.score((projected + self.hidden_proj(hidden).unsqueeze(1)).tanh_()).squeeze(-1)
        weights = torch.softmax(scores, dim=-1)
        context = torch.bmm(weights.unsqueeze(1), features).squeeze(1)
        return context, weights
