"""What a run leaves in its folder as it goes: one metrics.jsonl line per validation, the curves drawn from them,
and the checkpoints of a validated step (step-N.pt, best.pt, last.pt) with only the newest `keep` step-N files.

The training loop (loop.py) decides when to write; this module knows how, and in which order, so that a run
killed at any moment leaves a folder that its resume can continue from. `Window` gathers the training side of a
record: the running losses, batch metrics and throughput between two validations.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from imcaption.engine.checkpoint import save_checkpoint
from imcaption.files import write_text_atomically
from imcaption.visualize import plot_training_curves

__all__ = [
    "Window",
    "append_record",
    "draw_curves",
    "forget_records_after",
    "metrics_text",
    "save_last",
    "save_validated",
]

METRICS_FILE = "metrics.jsonl"


class Window:
    """Training losses, batch metrics and throughput between two validations."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.metrics: dict[str, list[float]] = {}
        self.images = 0
        self.start = time.perf_counter()
        self.end: float | None = None

    def freeze(self) -> None:
        """Stop the clock: validation time does not count against training throughput."""
        self.end = self.end or time.perf_counter()

    def add(self, loss: float, metrics: dict[str, float], images: int) -> None:
        self.losses.append(loss)
        for name, value in metrics.items():
            self.metrics.setdefault(name, []).append(value)
        self.images += images

    def images_per_s(self) -> float:
        return self.images / max(1e-9, (self.end or time.perf_counter()) - self.start)

    def postfix(self) -> dict[str, str]:
        shown = {"loss": f"{np.mean(self.losses[-50:]):.3f}"}
        shown.update({name: f"{np.mean(values[-50:]):.3f}" for name, values in self.metrics.items()})
        shown["img_s"] = f"{self.images_per_s():.0f}"
        return shown

    def summary(self) -> dict[str, float]:
        if not self.losses:  # a validation redone on resume, before any step of this session
            return {}
        summary = {"train_loss": float(np.mean(self.losses)), "train_images_per_s": self.images_per_s()}
        summary.update({f"train_{name}": float(np.mean(values)) for name, values in self.metrics.items()})
        return summary


# -- metrics.jsonl and curves.png ----------------------------------------------------------------------------------
def append_record(run_dir: Path, record: dict[str, Any]) -> None:
    """One validation's line at the end of metrics.jsonl."""
    with (run_dir / METRICS_FILE).open("a") as handle:
        handle.write(json.dumps(record) + "\n")


def forget_records_after(run_dir: Path, step: int) -> None:
    """Drop log lines of validations that no checkpoint holds: a run killed between writing the line and
    saving, or a new run started where a killed one left a log but no checkpoint."""
    log = run_dir / METRICS_FILE
    if log.is_file():
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        kept = [line for line in lines if (record := _decoded(line)) is not None and record["step"] <= step]
        if len(kept) != len(lines):
            write_text_atomically(log, "".join(line + "\n" for line in kept))


def _decoded(line: str) -> dict | None:
    """A metrics.jsonl record, or None for a line torn by a kill in the middle of writing it."""
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def draw_curves(run_dir: Path, selection_metric: str) -> None:
    """curves.png, redrawn from the whole of metrics.jsonl."""
    plot_training_curves(run_dir / METRICS_FILE, run_dir / "curves.png", selection_metric)


def metrics_text(metrics: dict[str, float]) -> str:
    """Validation metrics for the progress bar's log line: counts as they are, the rest to four places."""
    return ", ".join(f"{k} {v}" if isinstance(v, int) else f"{k} {v:.4f}" for k, v in metrics.items())


# -- checkpoints ---------------------------------------------------------------------------------------------------
def save_last(run_dir: Path, state: dict[str, Any], kind: str) -> None:
    """last.pt alone: what an interrupted run saves to resume from."""
    save_checkpoint(run_dir / "last.pt", state, kind)


def save_validated(run_dir: Path, state: dict[str, Any], kind: str, step: int, is_best: bool, keep: int) -> None:
    """The checkpoints of a validated step: step-N.pt, best.pt if it is the best so far, then last.pt; and only
    the newest `keep` step-N files are kept (all of them for 0)."""
    save_checkpoint(run_dir / f"step-{step:07d}.pt", state, kind)
    if is_best:
        save_checkpoint(run_dir / "best.pt", state, kind)
    # last.pt is what a resume starts from, so it is written last: a kill before it repeats this validation.
    save_checkpoint(run_dir / "last.pt", state, kind)
    for old in sorted(run_dir.glob("step-*.pt"))[: -keep or None]:
        old.unlink()
