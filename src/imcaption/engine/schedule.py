"""The learning rate as a pure function of where the run stands: the step (an epoch-sized run, so a resumed run
needs only the step to continue it), or the step and the fraction of a time budget spent (a `--minutes` run)."""

from __future__ import annotations

import math

FLOOR = 0.02  # the cosine ends at 2 % of the peak, not at zero


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor for 0-based `step`: linear warmup, then cosine decay to FLOOR at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return FLOOR + (1 - FLOOR) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def warmup_cosine_budget(step: int, warmup: int, spent: float) -> float:
    """Learning-rate factor of a time-budgeted run: linear warmup over the first `warmup` steps, then a cosine in
    the fraction of the budget `spent` (0..1), so the decay reaches FLOOR when the time is up, however fast the
    machine turns out to be. The cosine runs over the whole budget, warmup included: on a 15-minute budget the
    warmup is ~10 % of it, and the factor it hands over to is still 0.98."""
    if step < warmup:
        return (step + 1) / warmup
    return FLOOR + (1 - FLOOR) * 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, spent))))
