"""The `imcaption` command: `imcaption captcha ...` and `imcaption caption ...`. Parsing only."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from imcaption import __version__
from imcaption.cli import captcha, caption, serve

# Spellings of imcaption 0.1, answered with a pointer to the command that replaced them.
MOVED = {
    "train": "imcaption captcha train (or imcaption caption train for COCO-format data)",
    "evaluate": "imcaption captcha evaluate (or imcaption caption evaluate)",
    "predict": "imcaption captcha predict",
    "score": "imcaption captcha score",
    "read": "imcaption captcha read",
    "scenes": "imcaption caption scenes",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imcaption", description="Images to text: word-captcha recognition and image captioning."
    )
    parser.add_argument("--version", action="version", version=f"imcaption {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="TASK")
    captcha.add_commands(commands)
    caption.add_commands(commands)
    serve.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in MOVED:
        print(f"imcaption: `imcaption {argv[0]}` is now `{MOVED[argv[0]]}`", file=sys.stderr)
        return 2
    if argv[:1] == ["caption"] and len(argv) > 1 and argv[1] not in caption.COMMANDS and not argv[1].startswith("-"):
        print(
            "imcaption: `imcaption caption MODEL IMAGE` is now `imcaption caption caption MODEL IMAGE`", file=sys.stderr
        )
        return 2
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
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
