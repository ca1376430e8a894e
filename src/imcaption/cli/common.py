"""What the task commands share: options made from config dataclasses (each default and help text lives in the
config only), the train and export commands' common parts."""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imcaption.engine.config import config_fields, flat_values

if TYPE_CHECKING:
    from imcaption.engine.loop import Trainer


def add_config_options(parser: argparse.ArgumentParser, config: Any, title: str, exclude: Any = None) -> None:
    """One --option per config field (nested loop fields included, those of the nested config `exclude` left
    out), shown with the config's default. Options not given stay out of the parsed namespace, so
    `given_options` can tell them from defaults."""
    group = parser.add_argument_group(title)
    defaults = flat_values(config)
    left_out = config_fields(exclude) if exclude is not None else {}
    for name, f in config_fields(config).items():
        if name in left_out:
            continue
        default = defaults[name]
        group.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=type(default),
            choices=f.metadata.get("choices"),
            default=argparse.SUPPRESS,
            metavar=None if f.metadata.get("choices") else name.split("_")[-1].upper(),
            help=f"{f.metadata.get('help', '')} (default: {default})",
        )


def given_options(args: argparse.Namespace, config: Any) -> dict[str, Any]:
    """The config options present on the command line, by field name."""
    return {name: getattr(args, name) for name in config_fields(config) if hasattr(args, name)}


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1, refused with the value named otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")


def add_precision(parser: argparse.ArgumentParser, default: str, help_text: str) -> None:
    """--precision for reading with a model: the names engine.precision resolves, and the task's default."""
    from imcaption.engine.precision import PRECISIONS

    parser.add_argument("--precision", choices=PRECISIONS, default=default, help=help_text)


def numbered(path: str, index: int, count: int) -> str:
    """OUT.png for one image; OUT_0.png, OUT_1.png ... for several."""
    if count == 1:
        return path
    stem, dot, suffix = path.rpartition(".")
    return f"{stem}_{index}.{suffix}" if dot else f"{path}_{index}"


def add_train_command(sub: argparse._SubParsersAction, config: Any, help_text: str,
                      data_help: str) -> argparse.ArgumentParser:  # fmt: skip
    train = sub.add_parser("train", help=help_text, description=help_text)
    train.add_argument("data_dir", metavar="DATA_DIR", help=data_help)
    train.add_argument("--out", required=True, metavar="RUN_DIR", help="checkpoints, metrics.jsonl, curves.png")
    train.add_argument("--resume", action="store_true", help="continue RUN_DIR/last.pt with its saved settings")
    add_quiet(train)
    add_config_options(train, config, "training options")
    return train


def train_command(args: argparse.Namespace, task_type: Any, describe: Callable[[Any], str], metric: str) -> int:
    """`captcha train` and `caption train`: start or resume the run, say what it trains, train to the end."""
    from imcaption.engine.distributed import leave, world_from_env
    from imcaption.engine.run import open_run
    from imcaption.locks import folder_lock

    options = given_options(args, task_type.kind.config_type())
    world = world_from_env()

    def train() -> int:
        trainer = open_run(task_type, args.data_dir, args.out, options, args.resume, not args.quiet, world)
        if world.is_main:
            print(describe(trainer))
        return train_to_the_end(trainer, args.out, metric)

    try:
        if not world.is_main:  # the first process holds the run folder for all of them
            return train()
        with folder_lock(args.out, "training", wait=False):
            return train()
    finally:
        # The trainer is gone by now, and with it the DistributedDataParallel that holds the process group: a group
        # that outlived destroy_process_group was torn down at interpreter exit, where gloo's threads aborted the
        # process after a finished run (SIGABRT, "terminate called without an active exception").
        gc.collect()
        leave()


def train_to_the_end(trainer: Trainer, run_dir: str, metric: str) -> int:
    """Run a prepared Trainer; on SIGINT/SIGTERM say where it stopped and exit with 130/143."""
    from imcaption.engine.interrupt import Interrupted

    main = trainer.world.is_main
    if trainer.state.step and main:
        print(f"resuming {run_dir}/last.pt at {trainer.describe_stop()}")
    try:
        state = trainer.run()
    except Interrupted as stop:
        if main:
            print(f"\n{stop} at step {trainer.state.step:,}; saved {run_dir}/last.pt. Continue with --resume.")
        return stop.exit_code
    if main:
        print(f"done: best validation {metric} {state.best_metric:.4f}; checkpoints in {run_dir}")
    return 0


def add_export_command(sub: argparse._SubParsersAction, exporter: str, onnx_exporter: str | None = None,
                       int8_exporter: str | None = None) -> None:  # fmt: skip
    """`export CHECKPOINT --out MODEL` (and `--onnx MODEL.onnx` where the task has an ONNX exporter, `--int8`
    where it has a quantizer); each exporter names the "module:function" that writes it (imported when run, so
    that `--help` does not load torch)."""
    what = "a weights-only model file (safetensors, no optimizer, no pickle)"
    export = sub.add_parser("export", help=f"write {what}" + (" or an ONNX model" if onnx_exporter else ""))
    export.add_argument("checkpoint", metavar="CHECKPOINT")
    targets = export.add_mutually_exclusive_group(required=True)
    targets.add_argument("--out", metavar="MODEL", help=f"{what}, e.g. model.safetensors")
    if onnx_exporter:
        targets.add_argument(
            "--onnx", metavar="MODEL.onnx", help="an ONNX model for ONNX Runtime: the network and its greedy decoding"
        )
    if int8_exporter:
        from imcaption.deploy.quantize import CALIBRATION_IMAGES

        export.add_argument(
            "--int8", metavar="DATA_DIR", default=None,
            help="with --onnx: quantize the convolutions to int8 (faster in ONNX Runtime; a few readings"
            f" change), calibrated on {CALIBRATION_IMAGES} training images of the dataset in DATA_DIR",
        )  # fmt: skip
    export.set_defaults(func=lambda args: _export(args, exporter, onnx_exporter, int8_exporter))


def _export(args: argparse.Namespace, exporter: str, onnx_exporter: str | None, int8_exporter: str | None) -> int:
    onnx_out = getattr(args, "onnx", None)
    int8_data = getattr(args, "int8", None)
    if int8_data and not onnx_out:
        raise ValueError("--int8 quantizes an ONNX model: give --onnx MODEL.onnx too")
    chosen = int8_exporter if int8_data else onnx_exporter if onnx_out else exporter
    module, name = chosen.split(":")
    write = getattr(importlib.import_module(module), name)
    targets = (onnx_out, int8_data) if int8_data else (onnx_out or args.out,)
    out: Path = write(args.checkpoint, *targets)
    before, after = Path(args.checkpoint).stat().st_size, out.stat().st_size
    kind = ("int8 " if int8_data else "") + ("ONNX model" if onnx_out else "weights-only model")
    print(f"wrote {out}: {kind}, {after:,} bytes ({after / before:.0%} of the checkpoint)")
    return 0


def attention_beam(args: argparse.Namespace, has_attention: bool, model_name: str) -> int:
    """The beam width to decode with: attention plots come from greedy search, and need an attention model."""
    if args.attention and not has_attention:
        raise ValueError(f"a {model_name} model has no attention to draw; --attention needs sat")
    if args.attention and args.beam > 1:
        print("note: --attention draws the greedy result; --beam is ignored", file=sys.stderr)
        return 1
    return args.beam
