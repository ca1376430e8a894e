"""Plots: training curves and attention maps."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def read_metrics(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_training_curves(metrics_path: str | Path, out_path: str | Path, metric: str = "val_exact_match") -> None:
    """Validation `metric` and training loss against wall minutes."""
    records = read_metrics(metrics_path)
    if not records:
        return
    minutes = [r["wall_minutes"] for r in records]
    # A validation redone after an interrupt has no training window of its own.
    trained = [r for r in records if "train_loss" in r]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(minutes, [100 * r[metric] for r in records], marker="o", label=f"validation {metric}")
    left.set_xlabel("wall minutes")
    left.set_ylabel("%")
    left.set_ylim(0, 100)
    left.grid(alpha=0.3)
    left.legend(loc="lower right")
    trained_minutes = [r["wall_minutes"] for r in trained]
    right.plot(trained_minutes, [r["train_loss"] for r in trained], marker="o", color="tab:red", label="train loss")
    right.set_yscale("log")
    right.set_xlabel("wall minutes")
    right.grid(alpha=0.3)
    right.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)


def plot_attention(image: np.ndarray, word: str, attention: np.ndarray, out_path: str | Path, title: str = "") -> None:
    """One panel per decoded character (and the final <end>): its attention map over the image.

    image (H, W, 3) uint8; attention (steps, rows, cols)."""
    labels: Sequence[str] = list(word) + ["<end>"]
    steps = min(len(labels), attention.shape[0])
    height, width = image.shape[:2]
    fig, axes = plt.subplots(1, steps + 1, figsize=(2.2 * (steps + 1), 1.6))
    axes = np.atleast_1d(axes)
    axes[0].imshow(image)
    axes[0].set_title(title or word, fontsize=9)
    for ax, label, weights in zip(axes[1:], labels, attention[:steps], strict=False):
        ax.imshow(image)
        ax.imshow(weights, cmap="inferno", alpha=0.6, extent=(0, width, height, 0), interpolation="bilinear")
        ax.set_title(label, fontsize=11)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)


def plot_caption_attention(
    image: np.ndarray, words: Sequence[str], attention: np.ndarray, out_path: str | Path, columns: int = 4
) -> None:
    """The tutorial's plot_attention for any caption length: one panel per word (and <end>), in rows of
    `columns`. attention (steps, rows, cols) over the image grid."""
    labels = list(words) + ["<end>"]
    steps = min(len(labels), attention.shape[0])
    rows = max(1, -(-steps // columns))
    height, width = image.shape[:2]
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.6 * rows), squeeze=False)
    for n, ax in enumerate(axes.flat):
        ax.axis("off")
        if n >= steps:
            continue
        ax.imshow(image)
        ax.imshow(attention[n], cmap="inferno", alpha=0.55, extent=(0, width, height, 0), interpolation="bilinear")
        ax.set_title(labels[n], fontsize=11)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
