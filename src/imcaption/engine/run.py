"""Starting a run or resuming one: the saved configuration wins, and options that would change it are refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from imcaption.engine.checkpoint import CheckpointError, load_checkpoint
from imcaption.engine.config import LoopConfig, resume_config, with_options
from imcaption.engine.loop import Task, Trainer


class TaskConfig(Protocol):
    loop: LoopConfig

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Any: ...


C = TypeVar("C", bound=TaskConfig)


def open_run(
    run_dir: str | Path,
    config_cls: type[C],
    make_task: Callable[[C, dict[str, Any] | None], Task],
    kind: str,
    options: dict[str, Any] | None = None,
    resume: bool = False,
    progress: bool = True,
) -> Trainer:
    """A Trainer for `run_dir`. New run: the config's defaults with `options` applied. With `resume` and a
    last.pt there: the saved config (options may only change what a resumed run may change), a task built
    from it and the saved state (tokenizer included, not refit), every weight and random state restored.
    `make_task(config, saved_state or None)` builds the task."""
    options = options or {}
    last = Path(run_dir) / "last.pt"
    if last.is_file() and not resume:
        raise ValueError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    if not (resume and last.is_file()):
        config = with_options(config_cls(), options)
        return Trainer(make_task(config, None), config.loop, run_dir, progress)
    saved = load_checkpoint(last, kind)
    if "config" not in saved:
        raise CheckpointError(f"{last} was saved by imcaption 0.1, which kept no resumable run state; "
                              "start a new run in another --out folder")  # fmt: skip
    config = resume_config(config_cls.from_dict(saved["config"]), options)
    trainer = Trainer(make_task(config, saved), config.loop, run_dir, progress)
    trainer.resume_from(saved)
    return trainer
