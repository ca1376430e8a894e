"""Command-line options made from config dataclasses: each option's default and help live in the config only."""

from __future__ import annotations

import argparse
from typing import Any

from imcaption.engine.config import config_fields, flat_values


def add_config_options(parser: argparse.ArgumentParser, config: Any, title: str) -> None:
    """One --option per config field (nested loop fields included), shown with the config's default. Options
    not given stay out of the parsed namespace, so `given_options` can tell them from defaults."""
    group = parser.add_argument_group(title)
    defaults = flat_values(config)
    for name, f in config_fields(config).items():
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


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")


def numbered(path: str, index: int, count: int) -> str:
    """OUT.png for one image; OUT_0.png, OUT_1.png ... for several."""
    if count == 1:
        return path
    stem, dot, suffix = path.rpartition(".")
    return f"{stem}_{index}.{suffix}" if dot else f"{path}_{index}"
