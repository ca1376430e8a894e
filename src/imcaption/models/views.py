"""Test-time augmentation for step models: each image read as several slightly shifted copies, the copies'
log-probabilities averaged at every decoding step, so that all copies follow the one reading they agree on best.

Shifts only, never mirroring: a mirrored word is another word. The copies are edge-padded, not wrapped, so no
ink enters from the opposite border.
"""

from __future__ import annotations

import torch
from torch import nn

from imcaption.engine.search import LexiconTrie, Searched, SearchTokens, State, search

# (rows, columns) offsets in pixels of each copy, by number of copies; the image as it is comes first.
VIEW_OFFSETS = {
    1: ((0, 0),),
    3: ((0, 0), (0, -1), (0, 1)),
    5: ((0, 0), (0, -1), (0, 1), (-1, 0), (1, 0)),
}
VIEW_SHIFT = 1  # pixels per unit offset at the model's input size (1 read best of 1-2: bench/captcha_views.py)


def view_offsets(views: int, shift: int = VIEW_SHIFT) -> tuple[tuple[int, int], ...]:
    """The copies read for `views` (1, 3 or 5), as (rows, columns) pixel offsets."""
    if views not in VIEW_OFFSETS:
        raise ValueError(f"views must be one of {sorted(VIEW_OFFSETS)}, got {views}")
    return tuple((dy * shift, dx * shift) for dy, dx in VIEW_OFFSETS[views])


def shifted(images: torch.Tensor, rows: int, columns: int) -> torch.Tensor:
    """(B, C, H, W) images moved down by `rows` and right by `columns` pixels (negative: up, left), the border
    pixels repeated into the gap. Any dtype (uint8 pixels included)."""
    height, width = images.shape[-2:]
    device = images.device
    row_index = (torch.arange(height, device=device) - rows).clamp(0, height - 1)
    column_index = (torch.arange(width, device=device) - columns).clamp(0, width - 1)
    return images.index_select(-2, row_index).index_select(-1, column_index)


class AveragedViews(nn.Module):
    """A step model (start/step) over V copies of each image, presented to search as one model over B images:
    its state entries are (B, V, ...), so that beam search's reordering along the first dimension moves every
    copy of a hypothesis together; each step returns the copies' mean log-probabilities."""

    def __init__(self, model: nn.Module, views: int) -> None:
        super().__init__()
        self.model, self.views = model, views
        self.per_image_state = getattr(model, "per_image_state", frozenset())

    def start(self, copies: torch.Tensor) -> State:
        """copies: (B * V, C, H, W), the V copies of each image next to each other."""
        return {name: value.unflatten(0, (-1, self.views)) for name, value in self.model.start(copies).items()}

    def step(self, token: torch.Tensor, state: State) -> tuple[torch.Tensor, State, torch.Tensor | None]:
        flat = {name: value.flatten(0, 1) for name, value in state.items()}
        logits, flat, weights = self.model.step(token.repeat_interleave(self.views), flat)
        log_probs = torch.log_softmax(logits.float(), dim=-1).unflatten(0, (-1, self.views)).mean(dim=1)
        state = {name: value.unflatten(0, (-1, self.views)) for name, value in flat.items()}
        # The attention shown is that of the image as it is (the first copy).
        first_weights = None if weights is None else weights.unflatten(0, (-1, self.views))[:, 0]
        return log_probs, state, first_weights


def decode_views(
    model: nn.Module,
    images: torch.Tensor,
    offsets: tuple[tuple[int, int], ...],
    tokens: SearchTokens,
    max_steps: int,
    beam: int = 1,
    trie: LexiconTrie | None = None,
) -> Searched:
    """Search over the copies of `images` (B, C, H, W) at `offsets`, their log-probabilities averaged."""
    copies = torch.stack([shifted(images, rows, columns) for rows, columns in offsets], dim=1).flatten(0, 1)
    averaged = AveragedViews(model, len(offsets))
    return search(averaged, averaged.start(copies), images.shape[0], tokens, max_steps, beam, trie)
