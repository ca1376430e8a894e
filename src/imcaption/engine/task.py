"""What a task gives the training loop (`Task`), and what the engine knows of a task class before it has one
(`TaskKind`).

A task (captcha recognition, captioning) plugs in what differs from the others through this interface: its
model, the batch of a step, the loss, the validation metrics and what a checkpoint must carry to use the model.
It lives apart from the loop (loop.py) so that a task names the contract it meets, not the machinery that
drives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from imcaption.engine.distributed import SINGLE, World

__all__ = ["Task", "TaskKind"]


@dataclass(frozen=True)
class TaskKind:
    """What the engine needs to know of a task class before it has one."""

    config_type: type  # the task's config dataclass (a `loop: LoopConfig` inside)
    checkpoint_format: str  # the `format` written into its checkpoints
    selection_metric: str  # the validation metric that picks best.pt; higher is better


class Task(Protocol):
    """What a task gives the loop. `batch(step)` must depend only on the step and the task's own random
    state (saved through `rng_state`), so that a resumed run sees the same batches."""

    kind: TaskKind
    model: nn.Module
    steps_per_epoch: int
    batch_size: int

    def batch(self, step: int, rows: slice = slice(None)) -> Any:
        """Rows `rows` of step `step`'s global batch (all of it by default): under torchrun each rank reads only
        its own share, and a share is the same rows whatever the number of processes."""
        ...

    def loss(self, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss of a batch (model in train mode), and batch metrics for the log (may be empty)."""
        ...

    def validate(self, limit: int | None = None, world: World = SINGLE) -> dict[str, float]:
        """Validation metrics, `selection_metric` among them (model in eval mode, no gradients), on the first
        `limit` validation images (always the same ones), or on all of them; each rank of `world` reads its
        share and the metrics are computed from everything gathered, the same on every rank."""
        ...

    def description(self) -> dict[str, Any]:
        """What a checkpoint needs besides the weights to use the model: config, tokenizer, input size."""
        ...

    def rng_state(self) -> dict[str, torch.Tensor]: ...

    def set_rng_state(self, state: dict[str, torch.Tensor]) -> None: ...
