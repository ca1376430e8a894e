"""`imcaption captcha ...`: the word-captcha commands. Parsing and printing only; the work is in imcaption.captcha.

This module builds the command group and holds training and the whole assignment; the data commands (generate,
cache) are in captcha_data.py, the reading commands (evaluate, predict, score, read) in captcha_reading.py."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from imcaption.cli.captcha_data import DATA_HELP, STYLE_HELP, add_data_commands
from imcaption.cli.captcha_reading import add_reading_commands
from imcaption.cli.common import (
    add_config_options,
    add_export_command,
    add_quiet,
    add_train_command,
    given_options,
    train_command,
)
from imcaption.engine.config import with_options

if TYPE_CHECKING:
    from imcaption.engine.loop import Trainer


# DATA_HELP and STYLE_HELP were defined here before the commands were split by job; they stay importable from here.
__all__ = ["ASSIGNMENT_MINUTES", "DATA_HELP", "STYLE_HELP", "add_commands", "assignment_options"]

# The main job trains for a time budget, not an epoch count: the schedule ends when the hour is up on any machine.
ASSIGNMENT_MINUTES = 60.0


def cmd_train(args: argparse.Namespace) -> int:
    from imcaption.captcha.task import CaptchaTask

    def describe(trainer: Trainer) -> str:
        task = trainer.task
        return (
            f"{task.dataset_text}\n"
            f"training {task.config.model} on {len(task.train_ids):,} images, validating on {len(task.val_ids):,};"
            f" {trainer.schedule_text()} of {task.batch_size} on {task.device} in {trainer.precision}"
            f"{trainer.world_text()}"
        )

    return train_command(args, CaptchaTask, describe, "exact match")


def assignment_options(given: dict, run_dir: Path) -> dict:
    """The main job's training options: a new run trains for ASSIGNMENT_MINUTES unless --minutes or --epochs says
    otherwise; a run being resumed keeps the budget (or the epochs) it was started with."""
    if "minutes" in given:
        return given
    if "epochs" in given:
        return {**given, "minutes": 0.0}
    if (run_dir / "last.pt").is_file():
        return given
    return {**given, "minutes": ASSIGNMENT_MINUTES}


def cmd_assignment(args: argparse.Namespace) -> int:
    from imcaption.captcha.pipeline import run_assignment
    from imcaption.captcha.train_config import CaptchaTrainConfig
    from imcaption.engine.interrupt import Interrupted

    options = assignment_options(given_options(args, CaptchaTrainConfig()), Path(args.out))
    try:
        run_assignment(args.data_dir, args.out, options, count=args.count, progress=not args.quiet)
    except Interrupted as stop:
        print(f"\n{stop}: saved; run the same command again to resume", file=sys.stderr)
        return stop.exit_code
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    from imcaption.captcha.train_config import CaptchaTrainConfig

    captcha = commands.add_parser("captcha", help="word captchas: generate, cache, train, evaluate, predict, read ...")
    sub = captcha.add_subparsers(dest="captcha_command", required=True, metavar="COMMAND")
    defaults = CaptchaTrainConfig()

    add_data_commands(sub, defaults)

    train = add_train_command(sub, defaults, "train a captcha recognizer", DATA_HELP)
    train.set_defaults(func=cmd_train)

    add_reading_commands(sub)

    add_export_command(
        sub,
        "imcaption.captcha.recognizer:export_recognizer",
        "imcaption.deploy.onnx_export:export_onnx",
        "imcaption.deploy.quantize:export_int8_onnx",
    )

    run = sub.add_parser(
        "assignment", help="the whole job: generate if missing, cache, train, validate, predict test, score"
    )
    run.add_argument("data_dir", metavar="DATA_DIR", nargs="?", default="data/words_captcha")
    run.add_argument("--out", default="runs/captcha", metavar="RUN_DIR", help="(default: runs/captcha)")
    run.add_argument("--count", type=int, default=140_000, help="images to generate if DATA_DIR has none")
    add_quiet(run)
    add_config_options(
        run,
        with_options(defaults, {"minutes": ASSIGNMENT_MINUTES}),
        "training options (a resumed run keeps its saved ones; --epochs N alone trains N epochs instead of the"
        " time budget)",
        exclude=defaults.data,  # the assignment is the words_captcha layout
    )
    run.set_defaults(func=cmd_assignment)
