"""The Show, Attend and Tell decoding step, one for both tasks: additive attention over a grid of features, a GRU
that reads the previous token and the attended context, and a two-layer head over the new hidden state and the
context. The recognizer (sat.py) reads characters with it over its CNN's grid, the caption decoder
(caption_decoders.py) words over a projected grid."""

from __future__ import annotations

import torch
from torch import nn

from imcaption.models.attention import AdditiveAttention

State = dict[str, torch.Tensor]


class AttendGRUStep(nn.Module):
    """Base of the two sat decoders: `start_state` from a feature grid, then `step` per token.

    A subclass registers its own layers first, then calls `add_step_layers`: the order in which a module registers
    its parameters is the order a seeded initialization draws them in and the order a checkpoint's optimizer state
    follows, and each decoder keeps its order and its parameter names from before the two shared this step."""

    per_image_state = frozenset({"features", "keys"})  # beam search need not reorder them (engine.search)
    embedding: nn.Embedding
    attention: AdditiveAttention
    init_hidden: nn.Linear
    cell: nn.GRUCell
    output: nn.Sequential

    def add_step_layers(
        self, *, features: int, vocab_size: int, embed: int, hidden: int, attention: int, dropout: float | None = None
    ) -> None:
        """The step's layers for a grid of `features`-wide cells. `dropout`: a Dropout layer first in the head
        (the caption decoder's), or None for no layer at all (the recognizer's head, whose checkpoints name its
        layers output.0 and output.2)."""
        self.embedding = nn.Embedding(vocab_size, embed)
        self.attention = AdditiveAttention(features, hidden, attention)
        self.init_hidden = nn.Linear(features, hidden)
        self.cell = nn.GRUCell(embed + features, hidden)
        head = [nn.Linear(hidden + features, hidden), nn.ReLU(), nn.Linear(hidden, vocab_size)]
        self.output = nn.Sequential(*([] if dropout is None else [nn.Dropout(dropout)]), *head)

    def start_state(self, features: torch.Tensor) -> State:
        """The decoding state before the first step: feature grid (B, N, F), its attention keys, hidden (B, H)."""
        hidden = torch.tanh(self.init_hidden(features.mean(dim=1)))
        return {"features": features, "keys": self.attention.project(features), "hidden": hidden}

    def step(self, token: torch.Tensor, state: State) -> tuple[torch.Tensor, State, torch.Tensor]:
        """One decoding step -> logits (B, V), the next state, attention weights (B, N)."""
        context, weights = self.attention(state["features"], state["keys"], state["hidden"])
        hidden = self.cell(torch.cat([self.embedding(token), context], dim=-1), state["hidden"])
        logits = self.output(torch.cat([hidden, context], dim=-1))
        return logits, {**state, "hidden": hidden}, weights
