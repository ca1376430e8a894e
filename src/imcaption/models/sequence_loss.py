"""The loss of every step-by-step decoder of both tasks: cross-entropy over the real tokens of a target sequence."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# <pad> is token 0 of both tokenizers (text/char_tokenizer.py, text/word_tokenizer.py; tests/test_saved_sat_models.py
# checks it), so one loss serves characters and words.
PAD = 0


def sequence_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    label_smoothing: float = 0.0,
    *,
    attention: torch.Tensor | None = None,
    penalty: float = 0.0,
) -> torch.Tensor:
    """Mean cross-entropy over real tokens (words or letters, and <end>) of logits (B, T, V) against targets
    (B, T); <pad> positions count for nothing. With attention (B, T, N) and a `penalty`, plus
    penalty * sum_i (1 - sum_t alpha_ti)^2 averaged over the N cells, which pushes every image region to get
    attention at some step (Show, Attend and Tell's doubly stochastic regularization)."""
    loss = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=PAD, label_smoothing=label_smoothing)
    if attention is not None and penalty:
        real = (targets != PAD).unsqueeze(-1).float()
        coverage = (attention * real).sum(dim=1)
        loss = loss + penalty * ((1 - coverage) ** 2).sum(dim=1).mean() / attention.shape[-1]
    return loss
