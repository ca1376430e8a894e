"""The `imcaption` command: `imcaption captcha ...` and `imcaption caption ...`. Parsing only."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from imcaption.cli import captcha, caption, serve
from imcaption.extras import extra_for, install_hint
from imcaption.version import __version__

# Spellings of imcaption 0.1, answered with a pointer to the command that replaced them.
MOVED = {
    "train": "imcaption captcha train (or imcaption caption train for COCO-format data)",
    "evaluate": "imcaption captcha evaluate (or imcaption caption evaluate)",
    "predict": "imcaption captcha predict",
    "score": "imcaption captcha score",
    "read": "imcaption captcha read",
    "scenes": "imcaption caption scenes",
}

# The extras a command needs, by "task command" or by task, for naming the one to install when a module is missing:
# a module found in several extras is named by the command's (`captcha export` without torch needs 'export', which
# brings torch too). Commands not listed need no extra for their core use (`captcha read model.onnx`, `score`);
# a module they reach beyond it is named by its first extra (torch: 'train').
COMMAND_EXTRAS: dict[str, tuple[str, ...]] = {
    "captcha generate": ("generate",),
    "captcha export": ("export",),
    "captcha assignment": ("train", "generate"),
    "caption": ("caption",),
    "serve": ("serve",),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imcaption", description="Images to text: word-captcha recognition and image captioning."
    )
    parser.add_argument("--version", action="version", version=f"imcaption {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="TASK")
    for name, task in (("captcha", captcha), ("caption", caption), ("serve", serve)):
        add_task(commands, name, task)
    return parser


def add_task(commands: argparse._SubParsersAction, name: str, task: ModuleType) -> None:
    """The task's commands; where building them needs a missing extra (the caption commands' options come from
    its training config, which imports torch), a stand-in that takes any arguments and names the extra."""
    try:
        task.add_commands(commands)
    except ModuleNotFoundError as err:
        extra = extra_for(err.name, COMMAND_EXTRAS.get(name, ()))
        if extra is None or name in commands.choices:
            raise
        missing = err.name
        stand_in = commands.add_parser(name, help=f"(needs the '{extra}' extra)", add_help=False)
        stand_in.add_argument("rest", nargs=argparse.REMAINDER)
        stand_in.set_defaults(func=lambda _: _missing(missing))


def _missing(module: str | None) -> int:
    raise ModuleNotFoundError(f"No module named {module!r}", name=module)


def command_name(args: argparse.Namespace) -> str:
    """The parsed command as typed, "imcaption captcha train" (a stand-in's first argument taken as its command)."""
    task = args.command
    rest = [word for word in getattr(args, "rest", [])[:1] if not word.startswith("-")]
    command = getattr(args, f"{task}_command", None)
    return " ".join(["imcaption", task] + ([command] if command else rest))


def missing_extra(args: argparse.Namespace, err: ModuleNotFoundError) -> str | None:
    """The one line naming the extra that installs the module `err` misses, or None if no extra has it."""
    name = command_name(args)
    preferred = COMMAND_EXTRAS.get(name.removeprefix("imcaption ")) or COMMAND_EXTRAS.get(args.command, ())
    extra = extra_for(err.name, preferred)
    return None if extra is None else install_hint(name, extra)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in MOVED:
        print(f"imcaption: `imcaption {argv[0]}` is now `{MOVED[argv[0]]}`", file=sys.stderr)
        return 2
    if argv[:1] == ["caption"] and len(argv) > 1 and argv[1] in caption.RENAMED:
        # Still runs, so that scripts keep working; the note says what to type instead.
        new_name = caption.RENAMED[argv[1]]
        print(f"imcaption: note: `imcaption caption {argv[1]}` is now `imcaption caption {new_name}`", file=sys.stderr)
        argv[1] = new_name
    if argv[:1] == ["caption"] and len(argv) > 1 and argv[1] not in caption.COMMANDS and not argv[1].startswith("-"):
        print(
            "imcaption: `imcaption caption MODEL IMAGE` is now `imcaption caption describe MODEL IMAGE`",
            file=sys.stderr,
        )
        return 2
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ModuleNotFoundError as err:
        hint = missing_extra(args, err)
        if hint is None or os.environ.get("IMCAPTION_DEBUG"):
            raise
        print(hint, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, OSError) as err:
        if os.environ.get("IMCAPTION_DEBUG"):
            raise
        print(f"imcaption: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
