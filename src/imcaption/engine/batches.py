"""Which examples a training step reads, and validation spread over the ranks: the same for every task."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from imcaption.engine.distributed import World

Item = TypeVar("Item")


def epoch_batch(step: int, steps_per_epoch: int, batch_size: int, count: int, seed: int) -> np.ndarray:
    """Positions among `count` training examples of step `step`'s global batch: a permutation per epoch, seeded by
    (seed, epoch), so that the batch depends on the step alone and a resumed run (and every rank) draws the same."""
    epoch, offset = divmod(step, steps_per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(count)
    return order[offset * batch_size : (offset + 1) * batch_size]


def gather_sharded(
    rows: np.ndarray, batch_size: int, read: Callable[[np.ndarray], list[Item]], world: World
) -> list[Item]:
    """`read` over this rank's contiguous share of `rows`, `batch_size` rows at a time, and every rank's results
    gathered in row order on every rank: one result per row, as a single process would list them."""
    mine = rows[world.shard(len(rows))]
    results: list[Item] = []
    for start in range(0, len(mine), batch_size):
        results += read(mine[start : start + batch_size])
    return world.gather(results)
