"""The training loop every task shares, read top to bottom in `Trainer.run`.

A task (captcha recognition, captioning) plugs in what differs through `Task`: its model, the batch of a step,
the loss, the validation metrics and what a checkpoint must carry to use the model. The loop owns the rest:
AdamW with warmup + cosine (a pure function of the step), clipping, validation cadence, best/last/step-N
checkpoints, metrics.jsonl and curves.png, the progress bar, and exact resume: a checkpoint holds the step,
the weights, the optimizer, every random state and the best metric, so a resumed run replays the same steps.

A time-budgeted run (`LoopConfig.minutes`) trains until its wall time, summed over sessions, reaches the budget,
with the cosine driven by the fraction of the budget spent; it validates on a fixed subset as it goes and on
the whole split at the end. Its steps depend on the machine's speed, so its resume continues the schedule where
the time stood but cannot replay the same steps bit for bit.

SIGINT/SIGTERM stop the loop between two steps (never inside one); it saves last.pt and raises `Interrupted`.
A signal during validation abandons it; the resumed run validates that step again before training on.

Under torchrun (engine/distributed.py) every rank runs this same loop on its share of each global batch; the
decisions that depend on a clock or a signal (stop, finished, validate now) are agreed on by all ranks at each
step, validation is sharded and gathered, and rank 0 alone writes files and draws the progress bar. A checkpoint
does not depend on the number of processes, so a run resumes at any world size.
"""

from __future__ import annotations

import json
import signal
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from imcaption.engine.averaging import WeightAverage
from imcaption.engine.checkpoint import CheckpointError, save_checkpoint
from imcaption.engine.config import LoopConfig
from imcaption.engine.distributed import SINGLE, World, data_parallel
from imcaption.engine.interrupt import Interrupted, StopRequests
from imcaption.engine.precision import autocast, resolve_precision
from imcaption.engine.progress import progress_bar
from imcaption.engine.schedule import warmup_cosine, warmup_cosine_budget
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


@dataclass
class RunState:
    step: int = 0  # optimizer steps done
    validated_step: int = 0  # the last step whose validation finished
    best_metric: float = float("-inf")
    wall_seconds: float = 0.0  # training and validation, summed over every session of the run
    validated_seconds: float = 0.0  # wall_seconds when the last validation finished


# A time-budgeted run with no --eval-every validates this many times, evenly over its budget.
BUDGET_VALIDATIONS = 12


def resolve_device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: this torch has no CUDA device available; use --device cpu")
    return device


class Trainer:
    def __init__(self, task: Task, loop: LoopConfig, run_dir: str | Path, progress: bool = True,
                 world: World = SINGLE) -> None:  # fmt: skip
        self.task, self.loop, self.run_dir, self.world = task, loop, Path(run_dir), world
        self.progress = progress and world.is_main
        if task.batch_size % world.size:
            raise ValueError(
                f"--batch-size {task.batch_size} (the global batch) must divide evenly among {world.size} processes"
            )
        self.shard = world.shard(task.batch_size)
        device = resolve_device(loop.device)
        self.precision = resolve_precision(loop.precision, device)
        if not world.same_everywhere(int(self.precision == "bf16")):
            raise ValueError(
                f"--precision {loop.precision} resolved to bf16 on some processes and fp32 on others (their "
                "processors differ); pass --precision fp32 or bf16"
            )
        self._autocast = partial(autocast, self.precision, device)
        self.loss_module = data_parallel(task.model, task.loss, world)
        if loop.threads:
            torch.set_num_threads(loop.threads)
        self.average = WeightAverage(task.model, loop.ema) if loop.ema else None
        self.optimizer = torch.optim.AdamW(
            [p for p in task.model.parameters() if p.requires_grad], lr=loop.lr, weight_decay=loop.weight_decay
        )
        self.budget_seconds = loop.minutes * 60
        if loop.minutes < 0:
            raise ValueError(f"--minutes must be positive (or 0 for --epochs), got {loop.minutes}")
        self.total_steps = task.steps_per_epoch * loop.epochs
        if self.budget_seconds:  # the steps are whatever the time allows
            self.stop_step = loop.max_steps or 2**62
        else:
            self.stop_step = min(self.total_steps, loop.max_steps) if loop.max_steps else self.total_steps
        self.eval_every = loop.eval_every or (0 if self.budget_seconds else task.steps_per_epoch)
        self.state = RunState()
        self._session_start = time.perf_counter()
        self._last_lr = loop.lr
        self._spent = 0.0

    # -- the loop ------------------------------------------------------------------------------------------
    def run(self) -> RunState:
        """Train to `stop_step` or to the end of the time budget, validating on the cadence. Raises `Interrupted`
        after saving on a signal."""
        if self.world.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._forget_records_after(self.state.validated_step)
        self._session_start = time.perf_counter()
        bar = self._progress_bar()
        window = Window()
        with StopRequests() as stop:
            try:
                while True:
                    finished = self._finished()
                    due = self._validation_due(finished)
                    flags = (finished, due, stop.received is not None)
                    (finished, due, stopping), self._spent = self.world.agree(flags, self.budget_spent())
                    if due:
                        window.freeze()
                        metrics = self._validate_unless_stopped(stop, stopping, final=finished)
                        self._bank_wall_time()
                        self._record(metrics, window, bar)
                        window = Window()
                    if finished:
                        break
                    if stopping:
                        raise Interrupted(stop.received or signal.SIGTERM)
                    loss, batch_metrics = self._train_step()
                    self.state.step += 1
                    window.add(loss, batch_metrics, self.task.batch_size)
                    bar.set_postfix(window.postfix(), refresh=False)
                    bar.update(min(self._elapsed(), bar.total) - bar.n if self.budget_seconds else 1)
            except Interrupted:
                # Still inside StopRequests: a second Ctrl-C or SIGTERM while saving is recorded, not obeyed.
                self._bank_wall_time()
                if self.world.is_main:
                    self._save_last()
                raise
            finally:
                bar.close()
        return self.state

    def _validate_unless_stopped(self, stop: StopRequests, stopping: bool, final: bool) -> dict[str, float]:
        """Validation, abandoned (Interrupted) on a stop request. One process drops it at the signal; ranks
        only at the agreed stop, before it starts, since a rank leaving a collective would hang the others."""
        if stopping:
            raise Interrupted(stop.received or signal.SIGTERM)
        if self.world.distributed:
            return self._validate(final)
        with stop.immediate():
            return self._validate(final)

    def _progress_bar(self) -> Any:
        if self.budget_seconds:
            return progress_bar(enabled=self.progress, total=round(self.budget_seconds), initial=round(self._elapsed()),
                                desc="train", unit="s", bar_format=BUDGET_BAR)  # fmt: skip
        return progress_bar(enabled=self.progress, total=self.stop_step, initial=self.state.step, desc="train",
                            unit="step")  # fmt: skip

    def _elapsed(self) -> float:
        """Wall seconds of the run so far: earlier sessions, and this one up to now."""
        return self.state.wall_seconds + time.perf_counter() - self._session_start

    def _bank_wall_time(self) -> None:
        now = time.perf_counter()
        self.state.wall_seconds += now - self._session_start
        self._session_start = now

    def budget_spent(self) -> float:
        """The fraction of the time budget used (0 for an epoch-sized run)."""
        return self._elapsed() / self.budget_seconds if self.budget_seconds else 0.0

    def is_done(self) -> bool:
        """Trained to the end and validated there: running it again would do nothing."""
        return self._finished() and self.state.validated_step == self.state.step

    def describe_stop(self) -> str:
        if self.budget_seconds:
            return f"{self._elapsed() / 60:.1f} of {self.loop.minutes:g} minutes"
        return f"step {self.state.step:,} of {self.stop_step:,}"

    def world_text(self) -> str:
        """How the global batch is split, for a run under torchrun; nothing for one process."""
        if not self.world.distributed:
            return ""
        return f" x {self.world.size} processes ({self.task.batch_size // self.world.size} images each per step)"

    def schedule_text(self) -> str:
        if self.budget_seconds:
            return f"{self.loop.minutes:g} minutes of steps"
        return f"{self.total_steps:,} steps"

    def _finished(self) -> bool:
        return self.state.step >= self.stop_step or (bool(self.budget_seconds) and self.budget_spent() >= 1.0)

    def _validation_due(self, finished: bool) -> bool:
        step = self.state.step
        if step <= self.state.validated_step:
            return False
        if finished:
            return True
        if self.eval_every:
            return step % self.eval_every == 0
        interval = self.budget_seconds / BUDGET_VALIDATIONS
        return self._elapsed() >= self.state.validated_seconds + interval

    def _train_step(self) -> tuple[float, dict[str, float]]:
        self._last_lr = self.lr(self.state.step)
        for group in self.optimizer.param_groups:
            group["lr"] = self._last_lr
        batch = self.task.batch(self.state.step, self.shard)
        self.task.model.train()
        with self._autocast():
            loss, metrics = self.loss_module(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.task.model.parameters(), self.loop.grad_clip)
        self.optimizer.step()
        if self.average is not None:
            self.average.update(self.task.model)
        return loss.item(), metrics

    def lr(self, step: int) -> float:
        if self.budget_seconds:
            # The fraction of the budget spent as all ranks agreed at this step (rank 0's clock), so that every
            # rank takes the same learning rate.
            return self.loop.lr * warmup_cosine_budget(step, self.loop.warmup_steps, self._spent)
        return self.loop.lr * warmup_cosine(step, self.loop.warmup_steps, self.total_steps)

    def _validate(self, final: bool) -> dict[str, float]:
        """A budgeted run validates on the subset as it goes; at the end, on the whole split, plus the subset
        again (as `subset_<metric>`) so that the last checkpoint competes for best.pt on the same images."""
        self.task.model.eval()
        averaged = self.average.swapped_into(self.task.model) if self.average is not None else nullcontext()
        with averaged, torch.no_grad():
            self.world.share_buffers(self.task.model)
            if not self.budget_seconds:
                return self.task.validate(None, self.world)
            subset = self.task.validate(self.loop.val_subset, self.world)
            if not final:
                return subset
            everything = self.task.validate(None, self.world)
            return {**everything, **{f"subset_{name}": value for name, value in subset.items()}}

    def _record(self, metrics: dict[str, float], window: Window, bar: Any) -> None:
        self.state.validated_step = self.state.step
        self.state.validated_seconds = self.state.wall_seconds
        record = {
            "step": self.state.step,
            "epoch": self.state.step / self.task.steps_per_epoch,
            "wall_minutes": self.state.wall_seconds / 60,
            "lr": self._last_lr if self.budget_seconds else self.lr(self.state.step),
            **self.world.mean(window.summary()),
            **metrics,
        }
        selection = self.task.kind.selection_metric
        score = metrics.get(f"subset_{selection}", metrics[selection])
        is_best = score > self.state.best_metric
        if is_best:
            self.state.best_metric = score
        if not self.world.is_main:
            return
        # The log line first, then the checkpoints: a kill between the two leaves a line after the last
        # checkpoint, which the resumed run drops (resume_from) before it validates that step again.
        with (self.run_dir / "metrics.jsonl").open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        self._save_all(record, is_best)
        plot_training_curves(
            self.run_dir / "metrics.jsonl", self.run_dir / "curves.png", self.task.kind.selection_metric
        )
        shown = ", ".join(f"{k} {v}" if isinstance(v, int) else f"{k} {v:.4f}" for k, v in metrics.items())
        bar.write(f"step {self.state.step}: {shown}, {record['wall_minutes']:.1f} min")

    # -- checkpoints ---------------------------------------------------------------------------------------
    def checkpoint_state(self, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state(), **self.task.rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        if self.average is None:
            weights = {"model": self.task.model.state_dict()}
        else:  # "model" (what a reader loads) is the average; the trained weights go along for a resume
            weights = {
                "model": self.average.weights(),
                "trained_model": self.task.model.state_dict(),
                "ema_updates": self.average.updates,
            }
        return {
            **self.task.description(),
            **weights,
            "optimizer": self.optimizer.state_dict(),
            "rng": rng,
            "run_state": asdict(self.state),
            "precision": self.precision,  # what --precision resolved to on this machine
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
        if self.average is not None:
            self.task.model.load_state_dict(state["trained_model"])
            self.average.restore(state["model"], state["ema_updates"])
        else:
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


BUDGET_BAR = "{desc}: {percentage:3.0f}%|{bar}| {elapsed} of the budget, {remaining} left{postfix}"


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
