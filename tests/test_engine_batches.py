"""The engine's batch order and sharded validation (engine/batches.py), which both tasks use; the shares of
several ranks are tested with real processes in tests/test_distributed.py."""

from __future__ import annotations

import numpy as np

from imcaption.engine.batches import epoch_batch, gather_sharded
from imcaption.engine.distributed import SINGLE


def test_each_epoch_visits_every_example_once_in_its_own_seeded_order() -> None:
    def epoch(index: int, seed: int = 5) -> list[np.ndarray]:
        return [epoch_batch(step, 4, 6, 25, seed) for step in range(4 * index, 4 * index + 4)]

    first, second = epoch(0), epoch(1)
    assert all(len(batch) == 6 for batch in first)
    visited = np.concatenate(first)
    assert len(set(visited.tolist())) == 24  # 4 full batches of 25 examples: one is left out this epoch
    assert not np.array_equal(visited, np.concatenate(second))
    assert all(np.array_equal(a, b) for a, b in zip(first, epoch(0), strict=True))  # a resumed run draws the same
    assert not np.array_equal(visited, np.concatenate(epoch(0, seed=6)))


def test_sharded_reading_reads_every_row_once_in_batches_and_keeps_row_order() -> None:
    rows = np.arange(100, 111)
    reads: list[list[int]] = []

    def read(batch: np.ndarray) -> list[str]:
        reads.append(batch.tolist())
        return [f"row {row}" for row in batch]

    assert gather_sharded(rows, 4, read, SINGLE) == [f"row {row}" for row in rows]
    assert [len(batch) for batch in reads] == [4, 4, 3]
