"""The learning rate as a pure function of the step, so a resumed run needs only the step to continue it."""

from __future__ import annotations

import math

FLOOR = 0.02  # the cosine ends at 2 % of the peak, not at zero


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor for 0-based `step`: linear warmup, then cosine decay to FLOOR at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return FLOOR + (1 - FLOOR) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
