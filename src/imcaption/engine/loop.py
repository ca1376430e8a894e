"""The training loop every task shares, read top to bottom in `Trainer.run`.

A task (captcha recognition, captioning) plugs in what differs through `Task`: its model, the batch of a step,
the loss, the validation metrics and what a checkpoint must carry to use the model. The loop owns the rest:
AdamW with warmup + cosine (a pure function of the step), clipping, validation cadence, best/last/step-N
checkpoints, metrics.jsonl and curves.png, the progress bar, and exact resume: a checkpoint holds the step,
the weights, the optimizer, every random state and the best metric, so a resumed run replays the same steps.

SIGINT/SIGTERM stop the loop between two steps (never inside one); it saves last.pt and raises `Interrupted`.
A signal during validation abandons it; the resumed run validates that step again before training on.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from imcaption.engine.checkpoint import CheckpointError, save_checkpoint
from imcaption.engine.config import LoopConfig
from imcaption.engine.interrupt import Interrupted, StopRequests
from imcaption.engine.progress import progress_bar
from imcaption.engine.schedule import warmup_cosine
from imcaption.files import write_text_atomically
from imcaption.visualize import plot_training_curves


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

    def batch(self, step: int) -> Any: ...

    def loss(self, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss of a batch (model in train mode), and batch metrics for the log (may be empty)."""
        ...

    def validate(self) -> dict[str, float]:
        """Validation metrics, `selection_metric` among them (model in eval mode, no gradients)."""
        ...

    def description(self) -> dict[str, Any]:
        """What a checkpoint needs besides the weights to use the model: config, tokenizer, input size."""
        ...

    def rng_state(self) -> dict[str, torch.Tensor]: ...

    def set_rng_state(self, state: dict[str, torch.Tensor]) -> None: ...


@dataclass
class RunState:
    step: int = 0  # optimizer steps done
    validated_step: int = 0  # the last step whose validation finished
    best_metric: float = float("-inf")
    wall_seconds: float = 0.0  # training and validation, summed over every session of the run


def resolve_device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: this torch has no CUDA device available; use --device cpu")
    return device


class Trainer:
    def __init__(self, task: Task, loop: LoopConfig, run_dir: str | Path, progress: bool = True) -> None:
        self.task, self.loop, self.run_dir, self.progress = task, loop, Path(run_dir), progress
        if loop.threads:
            torch.set_num_threads(loop.threads)
        self.optimizer = torch.optim.AdamW(
            [p for p in task.model.parameters() if p.requires_grad], lr=loop.lr, weight_decay=loop.weight_decay
        )
        self.total_steps = task.steps_per_epoch * loop.epochs
        self.stop_step = min(self.total_steps, loop.max_steps) if loop.max_steps else self.total_steps
        self.eval_every = loop.eval_every or task.steps_per_epoch
        self.state = RunState()

    # -- the loop ------------------------------------------------------------------------------------------
    def run(self) -> RunState:
        """Train to `stop_step`, validating on the cadence. Raises `Interrupted` after saving on a signal."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._forget_records_after(self.state.validated_step)
        bar = progress_bar(enabled=self.progress, total=self.stop_step, initial=self.state.step, desc="train",
                           unit="step")  # fmt: skip
        window = Window()
        session_start = time.perf_counter()
        with StopRequests() as stop:
            try:
                while True:
                    if self._validation_due():
                        window.freeze()
                        with stop.immediate():
                            metrics = self._validate()
                        self.state.wall_seconds += time.perf_counter() - session_start
                        session_start = time.perf_counter()
                        self._record(metrics, window, bar)
                        window = Window()
                    if self.state.step >= self.stop_step:
                        break
                    stop.check()
                    loss, batch_metrics = self._train_step()
                    self.state.step += 1
                    window.add(loss, batch_metrics, self.task.batch_size)
                    bar.set_postfix(window.postfix(), refresh=False)
                    bar.update(1)
            except Interrupted:
                # Still inside StopRequests: a second Ctrl-C or SIGTERM while saving is recorded, not obeyed.
                self.state.wall_seconds += time.perf_counter() - session_start
                self._save_last()
                raise
            finally:
                bar.close()
        return self.state

    def _validation_due(self) -> bool:
        step = self.state.step
        return step > self.state.validated_step and (step % self.eval_every == 0 or step == self.stop_step)

    def _train_step(self) -> tuple[float, dict[str, float]]:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr(self.state.step)
        batch = self.task.batch(self.state.step)
        self.task.model.train()
        loss, metrics = self.task.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.task.model.parameters(), self.loop.grad_clip)
        self.optimizer.step()
        return loss.item(), metrics

    def lr(self, step: int) -> float:
        return self.loop.lr * warmup_cosine(step, self.loop.warmup_steps, self.total_steps)

    def _validate(self) -> dict[str, float]:
        self.task.model.eval()
        with torch.no_grad():
            return self.task.validate()

    def _record(self, metrics: dict[str, float], window: Window, bar: Any) -> None:
        self.state.validated_step = self.state.step
        record = {
            "step": self.state.step,
            "epoch": self.state.step / self.task.steps_per_epoch,
            "wall_minutes": self.state.wall_seconds / 60,
            "lr": self.lr(self.state.step),
            **window.summary(),
            **metrics,
        }
        score = metrics[self.task.kind.selection_metric]
        is_best = score > self.state.best_metric
        if is_best:
            self.state.best_metric = score
        # The log line first, then the checkpoints: a kill between the two leaves a line after the last
        # checkpoint, which the resumed run drops (resume_from) before it validates that step again.
        with (self.run_dir / "metrics.jsonl").open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        self._save_all(record, is_best)
        plot_training_curves(
            self.run_dir / "metrics.jsonl", self.run_dir / "curves.png", self.task.kind.selection_metric
        )
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        bar.write(f"step {self.state.step}: {shown}, {record['wall_minutes']:.1f} min")

    # -- checkpoints ---------------------------------------------------------------------------------------
    def checkpoint_state(self, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state(), **self.task.rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            **self.task.description(),
            "model": self.task.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng,
            "run_state": asdict(self.state),
            "metrics": metrics or {},
        }

    def _save_last(self) -> None:
        save_checkpoint(self.run_dir / "last.pt", self.checkpoint_state(), self.task.kind.checkpoint_format)

    def _save_all(self, record: dict[str, Any], is_best: bool) -> None:
        state = self.checkpoint_state(record)
        kind = self.task.kind.checkpoint_format
        save_checkpoint(self.run_dir / f"step-{self.state.step:07d}.pt", state, kind)
        if is_best:
            save_checkpoint(self.run_dir / "best.pt", state, kind)
        # last.pt is what a resume starts from, so it is written last: a kill before it repeats this validation.
        save_checkpoint(self.run_dir / "last.pt", state, kind)
        for old in sorted(self.run_dir.glob("step-*.pt"))[: -self.loop.keep or None]:
            old.unlink()

    def resume_from(self, state: dict[str, Any]) -> None:
        if "run_state" not in state:
            raise CheckpointError(
                "this checkpoint was saved by imcaption 0.1, which kept no resumable run state;"
                " it can still be read and evaluated, but training must start a new run"
            )
        self.task.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        rng = dict(state["rng"])
        torch.set_rng_state(rng.pop("torch"))
        cuda = rng.pop("cuda", None)
        if cuda is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda)
        self.task.set_rng_state(rng)
        self.state = RunState(**state["run_state"])

    def _forget_records_after(self, step: int) -> None:
        """Drop log lines of validations that no checkpoint holds: a run killed between writing the line and
        saving, or a new run started where a killed one left a log but no checkpoint."""
        log = self.run_dir / "metrics.jsonl"
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
