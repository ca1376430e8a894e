"""Parallel decoding: one learned query per output position attends over the encoder's grid, all positions at
once (the vision decoder of ABINet / PARSeq, made small). No recurrence: training runs one pass instead of a
step per character, and reading needs no loop over steps either."""

from __future__ import annotations

import torch
from torch import nn

from imcaption.engine.search import LexiconTrie, Searched, search
from imcaption.models.encoder import ConvEncoder
from imcaption.models.sat import TOKENS, masked_cross_entropy
from imcaption.text.char_tokenizer import PAD


class QueryBlock(nn.Module):
    """Pre-norm: the queries look at each other (so a position knows how long the word is around it), then at
    the image, then through an MLP."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.self_norm = nn.LayerNorm(width)
        self.self_attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.cross_norm = nn.LayerNorm(width)
        self.cross_attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """queries (B, T, D), memory (B, N, D) -> queries, attention over the memory averaged over heads (B, T, N)."""
        h = self.self_norm(queries)
        queries = queries + self.self_attention(h, h, h, need_weights=False)[0]
        context, weights = self.cross_attention(self.cross_norm(queries), memory, memory, need_weights=True)
        queries = queries + context
        return queries + self.mlp(self.mlp_norm(queries)), weights


class ParallelRecognizer(nn.Module):
    has_beam_search = True
    # Every hypothesis of an image reads the same logits at the same position (engine.search).
    per_image_state = frozenset({"logits", "attention", "position"})

    def __init__(self, encoder: ConvEncoder, vocab_size: int, max_length: int, layers: int, heads: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.max_length = max_length
        width = encoder.channels
        # One query per letter position and one for <end>.
        self.queries = nn.Parameter(torch.randn(max_length + 1, width) * 0.02)
        self.memory_norm = nn.LayerNorm(width)
        self.blocks = nn.ModuleList(QueryBlock(width, heads) for _ in range(layers))
        self.output_norm = nn.LayerNorm(width)
        self.output = nn.Linear(width, vocab_size)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> logits (B, T, V) for every position, the last block's attention (B, T, N)."""
        memory = self.memory_norm(self.encoder.cells(images))
        queries = self.queries.expand(images.shape[0], -1, -1)
        weights = torch.empty(0)
        for block in self.blocks:
            queries, weights = block(queries, memory)
        return self.output(self.output_norm(queries)), weights

    def loss(
        self, images: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy over real tokens (letters and <end>), and which images (B,) were read exactly.
        targets (B, T): letters, <end>, <pad>s."""
        logits = self(images)[0][:, : targets.shape[1]]
        loss = masked_cross_entropy(logits, targets, label_smoothing)
        exact = ((logits.argmax(-1) == targets) | (targets == PAD)).all(dim=1)
        return loss, exact

    def start(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every position's logits at once; the search then reads them one position per step."""
        logits, weights = self(images)
        position = torch.zeros(images.shape[0], dtype=torch.long, device=images.device)
        return {"logits": logits, "attention": weights, "position": position}

    def step(
        self, token: torch.Tensor, state: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """The next position's logits (B, V) and attention (B, N); the token read before does not change them."""
        rows = torch.arange(token.shape[0], device=token.device)
        position = state["position"]
        logits, weights = state["logits"][rows, position], state["attention"][rows, position]
        return logits, {**state, "position": position + 1}, weights

    @torch.no_grad()
    def decode(self, images: torch.Tensor, beam: int = 1, trie: LexiconTrie | None = None) -> Searched:
        """Token ids per image; with greedy search also the attention, (B, steps, grid rows, grid cols). With a
        lexicon, beam search over the independent positions finds the listed word of highest probability."""
        searched = search(self, self.start(images), images.shape[0], TOKENS, self.max_length + 1, beam, trie)
        if searched.attention is not None:
            searched.attention = searched.attention.view(*searched.attention.shape[:2], *self.encoder.config.grid)
        return searched
