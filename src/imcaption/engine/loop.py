"""The training loop every task shares, read top to bottom in `Trainer.run`.

A task (captcha recognition, captioning) plugs in what differs through `Task` (task.py): its model, the batch
of a step, the loss, the validation metrics and what a checkpoint must carry to use the model. The loop owns the
rest: AdamW with warmup + cosine (a pure function of the step), clipping, validation cadence, when to write
best/last/step-N checkpoints, metrics.jsonl and curves.png (records.py writes them), the progress bar, and exact
resume: a checkpoint holds the step, the weights, the optimizer, every random state and the best metric
(training_state.py), so a resumed run replays the same steps.

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

import signal
import time
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from imcaption.engine.averaging import WeightAverage
from imcaption.engine.config import LoopConfig
from imcaption.engine.devices import resolve_device
from imcaption.engine.distributed import SINGLE, World, data_parallel
from imcaption.engine.interrupt import Interrupted, StopRequests
from imcaption.engine.precision import autocast, resolve_precision
from imcaption.engine.progress import progress_bar
from imcaption.engine.records import (
    Window,
    append_record,
    draw_curves,
    forget_records_after,
    metrics_text,
    save_last,
    save_validated,
)
from imcaption.engine.schedule import warmup_cosine, warmup_cosine_budget
from imcaption.engine.task import Task, TaskKind
from imcaption.engine.training_state import RunState, restore_training_state, training_state

# Task, TaskKind, RunState, Window and resolve_device were defined here before the loop was split by job; they stay
# importable from this module for the code that imports them from here.
__all__ = ["BUDGET_VALIDATIONS", "RunState", "Task", "TaskKind", "Trainer", "Window", "resolve_device"]

# A time-budgeted run with no --eval-every validates this many times, evenly over its budget.
BUDGET_VALIDATIONS = 12
BUDGET_BAR = "{desc}: {percentage:3.0f}%|{bar}| {elapsed} of the budget, {remaining} left{postfix}"


class Trainer:
    """One run of one task in `run_dir`: a new run, or a resumed one after `resume_from` (engine/run.py builds
    both)."""

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
            forget_records_after(self.run_dir, self.state.validated_step)
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
        # checkpoint, which the resumed run drops (forget_records_after) before it validates that step again.
        append_record(self.run_dir, record)
        save_validated(self.run_dir, self.checkpoint_state(record), self.task.kind.checkpoint_format,
                       self.state.step, is_best, self.loop.keep)  # fmt: skip
        draw_curves(self.run_dir, self.task.kind.selection_metric)
        bar.write(f"step {self.state.step}: {metrics_text(metrics)}, {record['wall_minutes']:.1f} min")

    # -- checkpoints ---------------------------------------------------------------------------------------
    def checkpoint_state(self, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        """What a checkpoint of this moment holds, `metrics` (the validation's record) among it."""
        return training_state(self.task, self.optimizer, self.average, self.state, self.precision, metrics)

    def _save_last(self) -> None:
        save_last(self.run_dir, self.checkpoint_state(), self.task.kind.checkpoint_format)

    def resume_from(self, state: dict[str, Any]) -> None:
        """Continue from a training checkpoint's state: weights, optimizer, random states and the run's step."""
        self.state = restore_training_state(state, self.task, self.optimizer, self.average)
