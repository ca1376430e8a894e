"""The comparison head: the same CNN, columns read by a bidirectional GRU, trained with CTC."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from imcaption.engine.search import LexiconTrie, Searched, ctc_best_path, ctc_lexicon
from imcaption.models.encoder import ConvEncoder
from imcaption.text.char_tokenizer import END, PAD


class CTCRecognizer(nn.Module):
    has_beam_search = False  # the best path is exact for CTC; a lexicon needs no beam either

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
        return torch.log_softmax(self.output(sequence).float(), dim=-1)  # fp32 under bf16 autocast too

    def loss(
        self, images: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """CTC loss over the columns (label smoothing does not apply), and which images (B,) the best path
        reads exactly. targets (B, L): letters, <end>, <pad>s."""
        log_probs = self(images)
        lengths = (targets > END).sum(dim=1)
        steps = torch.full((images.shape[0],), log_probs.shape[1], dtype=torch.long)
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, steps, lengths, blank=PAD, zero_infinity=True)
        read = ctc_best_path(log_probs.detach(), PAD).ids
        truth = [[t for t in row if t > END] for row in targets.tolist()]
        exact = torch.tensor([r == t for r, t in zip(read, truth, strict=True)])
        return loss, exact

    @torch.no_grad()
    def decode(self, images: torch.Tensor, beam: int = 1, trie: LexiconTrie | None = None) -> Searched:
        """Best path, or with a lexicon the listed word of highest CTC likelihood (exact, no beam needed)."""
        if beam < 1:
            raise ValueError(f"beam width must be at least 1, got {beam}")
        if beam > 1:
            raise ValueError(
                "beam search is for sat and par models; a ctc model decodes its best path (or use --lexicon)"
            )
        log_probs = self(images)
        return ctc_lexicon(log_probs, trie, PAD) if trie is not None else ctc_best_path(log_probs, PAD)
