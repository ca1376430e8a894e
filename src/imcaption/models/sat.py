"""Show, Attend and Tell for characters: CNN grid, additive attention, GRU decoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from imcaption.engine.search import LexiconTrie, Searched, SearchTokens, search
from imcaption.models.attention import AdditiveAttention
from imcaption.models.encoder import ConvEncoder
from imcaption.text.char_tokenizer import END, PAD, START

TOKENS = SearchTokens(START, END, PAD)


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy over real tokens (letters and <end>); <pad> positions count for nothing."""
    return F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=PAD, label_smoothing=label_smoothing)


class SATRecognizer(nn.Module):
    has_beam_search = True
    per_image_state = frozenset({"features", "keys"})  # beam search need not reorder them (engine.search)

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

    def start(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The decoding state before the first step: feature grid (B, N, F), its attention keys, hidden."""
        features = self.encoder.cells(images)
        hidden = torch.tanh(self.init_hidden(features.mean(dim=1)))
        return {"features": features, "keys": self.attention.project(features), "hidden": hidden}

    def step(
        self, token: torch.Tensor, state: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """One decoding step -> logits (B, V), the next state, attention weights (B, N)."""
        context, weights = self.attention(state["features"], state["keys"], state["hidden"])
        hidden = self.cell(torch.cat([self.embedding(token), context], dim=-1), state["hidden"])
        logits = self.output(torch.cat([hidden, context], dim=-1))
        return logits, {**state, "hidden": hidden}, weights

    def forward(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: step t reads target t-1 (<start> first). targets (B, T) -> logits (B, T, V)."""
        state = self.start(images)
        token = torch.full((images.shape[0],), START, dtype=torch.long, device=images.device)
        logits = []
        for t in range(targets.shape[1]):
            step_logits, state, _ = self.step(token, state)
            logits.append(step_logits)
            token = targets[:, t]
        return torch.stack(logits, dim=1)

    def loss(
        self, images: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy over real tokens (letters and <end>; <pad> counts for nothing) under teacher forcing,
        and which images (B,) were read exactly."""
        logits = self(images, targets)
        loss = masked_cross_entropy(logits, targets, label_smoothing)
        exact = ((logits.argmax(-1) == targets) | (targets == PAD)).all(dim=1)
        return loss, exact

    @torch.no_grad()
    def decode(self, images: torch.Tensor, beam: int = 1, trie: LexiconTrie | None = None) -> Searched:
        """Token ids per image; with greedy search also the attention, (B, steps, grid rows, grid cols)."""
        searched = search(self, self.start(images), images.shape[0], TOKENS, self.max_length + 1, beam, trie)
        if searched.attention is not None:
            searched.attention = searched.attention.view(*searched.attention.shape[:2], *self.encoder.config.grid)
        return searched
