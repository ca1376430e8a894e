"""Show, Attend and Tell for characters: CNN grid, additive attention, GRU decoder."""

from __future__ import annotations

import torch

from imcaption.engine.search import LexiconTrie, Searched, SearchTokens, search
from imcaption.models.attend_step import AttendGRUStep
from imcaption.models.encoder import ConvEncoder
from imcaption.models.sequence_loss import sequence_loss
from imcaption.text.char_tokenizer import END, PAD, START

TOKENS = SearchTokens(START, END, PAD)

# The recognizers' name for the one sequence loss (models/sequence_loss.py), kept for the code that imports it.
masked_cross_entropy = sequence_loss


class SATRecognizer(AttendGRUStep):
    has_beam_search = True

    def __init__(
        self, encoder: ConvEncoder, vocab_size: int, hidden: int, embed: int, attention: int, max_length: int
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.max_length = max_length
        self.add_step_layers(
            features=encoder.channels, vocab_size=vocab_size, embed=embed, hidden=hidden, attention=attention
        )

    def start(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The decoding state before the first step: feature grid (B, N, F), its attention keys, hidden."""
        return self.start_state(self.encoder.cells(images))

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
        loss = sequence_loss(logits, targets, label_smoothing)
        exact = ((logits.argmax(-1) == targets) | (targets == PAD)).all(dim=1)
        return loss, exact

    @torch.no_grad()
    def decode(self, images: torch.Tensor, beam: int = 1, trie: LexiconTrie | None = None) -> Searched:
        """Token ids per image; with greedy search also the attention, (B, steps, grid rows, grid cols)."""
        searched = search(self, self.start(images), images.shape[0], TOKENS, self.max_length + 1, beam, trie)
        if searched.attention is not None:
            searched.attention = searched.attention.view(*searched.attention.shape[:2], *self.encoder.config.grid)
        return searched
