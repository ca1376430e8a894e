"""Throughput that one busy moment of a shared machine does not decide: the median of a few timed passes.

The cores of these machines are shared with other virtual machines, and a single pass's speed moved by up to a
third between back-to-back runs of the same code (BENCHMARKS.md); the median of three passes, each recorded,
keeps one slow or fast moment from deciding a figure while showing how much the passes spread."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

PASSES = 3


def timed_rate(run: Callable[[], int]) -> float:
    """Items per second of one call of `run`, which returns how many items it handled."""
    start = time.perf_counter()
    items = run()
    return items / (time.perf_counter() - start)


def median_rate(run: Callable[[], int], passes: int = PASSES) -> tuple[float, list[float]]:
    """The median items/s over `passes` calls of `run`, and every pass's, rounded to 0.1."""
    rates = [round(timed_rate(run), 1) for _ in range(passes)]
    return statistics.median(rates), rates
