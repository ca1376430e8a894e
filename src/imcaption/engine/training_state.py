"""What a training checkpoint holds so that a resumed run replays the same steps, and putting it back.

Besides the task's description and the weights (with an average of them, the trained weights as well), that is
the optimizer, every random state (torch's, CUDA's, the task's own) and the loop's `RunState`: the step, the
best metric and the wall time spent. The training loop (loop.py) decides when to save; records.py writes the
files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from imcaption.engine.averaging import WeightAverage
from imcaption.engine.checkpoint import CheckpointError
from imcaption.engine.task import Task

__all__ = ["RunState", "restore_training_state", "training_state"]


@dataclass
class RunState:
    step: int = 0  # optimizer steps done
    validated_step: int = 0  # the last step whose validation finished
    best_metric: float = float("-inf")
    wall_seconds: float = 0.0  # training and validation, summed over every session of the run
    validated_seconds: float = 0.0  # wall_seconds when the last validation finished


def training_state(
    task: Task,
    optimizer: torch.optim.Optimizer,
    average: WeightAverage | None,
    run_state: RunState,
    precision: str,
    metrics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a checkpoint of this moment holds: what reading the model needs, and what resuming needs."""
    rng = {"torch": torch.get_rng_state(), **task.rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    if average is None:
        weights = {"model": task.model.state_dict()}
    else:  # "model" (what a reader loads) is the average; the trained weights go along for a resume
        weights = {
            "model": average.weights(),
            "trained_model": task.model.state_dict(),
            "ema_updates": average.updates,
        }
    return {
        **task.description(),
        **weights,
        "optimizer": optimizer.state_dict(),
        "rng": rng,
        "run_state": asdict(run_state),
        "precision": precision,  # what --precision resolved to on this machine
        "metrics": metrics or {},
    }


def restore_training_state(
    state: dict[str, Any], task: Task, optimizer: torch.optim.Optimizer, average: WeightAverage | None
) -> RunState:
    """Put a checkpoint's weights, optimizer and random states back in place; its run state, to continue from."""
    if "run_state" not in state:
        raise CheckpointError(
            "this checkpoint was saved by imcaption 0.1, which kept no resumable run state;"
            " it can still be read and evaluated, but training must start a new run"
        )
    if average is not None:
        task.model.load_state_dict(state["trained_model"])
        average.restore(state["model"], state["ema_updates"])
    else:
        task.model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    rng = dict(state["rng"])
    torch.set_rng_state(rng.pop("torch"))
    cuda = rng.pop("cuda", None)
    if cuda is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    task.set_rng_state(rng)
    return RunState(**state["run_state"])
