"""Starting a run or resuming one: the saved configuration wins, and options that would change it are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from imcaption.engine.checkpoint import CheckpointError, load_checkpoint
from imcaption.engine.config import resume_config, with_options
from imcaption.engine.distributed import SINGLE, World, join
from imcaption.engine.loop import Trainer
from imcaption.engine.task import Task, TaskKind


class TaskType(Protocol):
    """A task class as the loop's runs see it: its config class, its checkpoint format, and how to build it."""

    kind: TaskKind

    def __call__(self, data_dir: str | Path, config: Any, saved: dict[str, Any] | None, progress: bool) -> Task:
        """The task for `config`; `saved` is the checkpoint being resumed (its tokenizer is reused), or None."""
        ...


def open_run(
    task_type: TaskType,
    data_dir: str | Path,
    run_dir: str | Path,
    options: dict[str, Any] | None = None,
    resume: bool = False,
    progress: bool = True,
    world: World = SINGLE,
) -> Trainer:
    """A Trainer for `run_dir`. New run: the task config's defaults with `options` applied. With `resume` and a
    last.pt there: the saved config (options may only change what a resumed run may change), the task built
    from it and the saved state (tokenizer included, not refit), every weight and random state restored.
    Under torchrun (`world` of several ranks) every rank calls this; the checkpoint does not depend on the
    number of processes, so a run started with one resumes with any."""
    options = options or {}
    last = Path(run_dir) / "last.pt"
    if last.is_file() and not resume:
        raise ValueError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    if resume and not last.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint to continue at {last.resolve()}; leave out --resume to "
                                "start a new run there")  # fmt: skip
    if not resume:
        config = with_options(task_type.kind.config_type(), options)
        task = _build_task(task_type, data_dir, config, None, progress, world)
        return _checked_same_start(Trainer(task, config.loop, run_dir, progress, world), run_dir, world)
    saved = load_checkpoint(last, task_type.kind.checkpoint_format)
    if "config" not in saved:
        raise CheckpointError(
            f"{last} was saved by imcaption 0.1, which kept no resumable run state; "
            "start a new run in another --out folder"
        )
    config = resume_config(task_type.kind.config_type.from_dict(saved["config"]), options)
    task = _build_task(task_type, data_dir, config, saved, progress, world)
    trainer = Trainer(task, config.loop, run_dir, progress, world)
    trainer.resume_from(saved)
    return _checked_same_start(trainer, run_dir, world)


def _build_task(task_type: TaskType, data_dir: str | Path, config: Any, saved: dict[str, Any] | None, progress: bool,
                world: World) -> Task:  # fmt: skip
    """The task; under torchrun the first process of each machine builds it first (and with it any missing cache
    on that machine), the others after, reading that cache."""
    join(world, config.loop.device)
    first_here = world.local_rank == 0
    if not first_here:
        world.barrier()
    task = task_type(data_dir, config, saved, progress and world.is_main)
    if first_here:
        world.barrier()
    return task


def _checked_same_start(trainer: Trainer, run_dir: str | Path, world: World) -> Trainer:
    """Under torchrun every rank must start from the same step: ranks on machines that do not see RUN_DIR's
    last.pt would start afresh beside a resuming rank 0 and hang in mismatched collectives."""
    if not world.same_everywhere(trainer.state.step):
        raise CheckpointError(
            f"the processes start from different steps (this one: {trainer.state.step}); every rank must see the "
            f"same {run_dir}/last.pt (a shared folder, or a copy of last.pt on every machine)"
        )
    return trainer
