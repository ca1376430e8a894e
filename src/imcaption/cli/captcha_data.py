"""`imcaption captcha generate` and `imcaption captcha cache`, and the dataset layout options every command that
opens a dataset shares. Parsing and printing only; the work is in imcaption.captcha."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from imcaption.cli.common import add_config_options, add_quiet, given_options
from imcaption.engine.config import with_options

if TYPE_CHECKING:
    from imcaption.captcha.train_config import CaptchaTrainConfig

__all__ = ["DATA_HELP", "STYLE_HELP", "add_data_commands", "layout", "layout_options"]

DATA_HELP = (
    "a dataset folder: words_captcha (a0.png ... + spec_train_val.txt), images with a label file "
    "(labels.csv/.tsv/.txt or --label-file), or images labeled in their file names (2b8x7.png, 2b8x7_13.png)"
)

# The generator's styles (imcaption.captcha.styles.STYLES), described for --help without importing it.
STYLE_HELP = {
    "faithful": "the four real face classes, thin letters, noise that stays inside the image",
    "v1": "imcaption 0.1's faces and noise, to reproduce earlier results",
    "wide": "half faithful, half all 23 faces of every family with wider noise, for robustness to unseen captchas",
    "universal": "hundreds of faces of eight families (a fifth held out), letters varied in weight, slant and "
    "shape, a quarter faithful: a reader for captchas it never saw",
    "unseen-faces": "only the faces the universal style holds out: its validation set of faces never trained on",
}
# Where `generate --unseen-faces N` writes the unseen-faces set: a dataset folder of its own inside OUT_DIR.
UNSEEN_FACES_FOLDER = "unseen_faces"


def cmd_generate(args: argparse.Namespace) -> int:
    from imcaption.captcha.generator import STYLES, generate_dataset
    from imcaption.captcha.vocabulary import default_vocabulary, read_vocabulary

    vocabulary = read_vocabulary(args.words) if args.words else default_vocabulary()
    style = STYLES[args.style]
    if args.unseen_faces and style.name != "universal":
        print("imcaption captcha generate: --unseen-faces goes with --style universal", file=sys.stderr)
        return 2
    drawn = generate_dataset(
        args.out_dir, vocabulary, args.count, args.seed, args.workers, style=style, progress=not args.quiet
    )
    kept = args.count - drawn
    print(
        f"{args.out_dir}: {args.count:,} images in the {style.name} style ({drawn:,} drawn, {kept:,} already "
        f"there), seed {args.seed}"
    )
    if args.unseen_faces:
        unseen = Path(args.out_dir) / UNSEEN_FACES_FOLDER
        drawn = generate_dataset(unseen, vocabulary, args.unseen_faces, args.seed, args.workers,
                                 style=STYLES["unseen-faces"], progress=not args.quiet)  # fmt: skip
        print(f"{unseen}: {args.unseen_faces:,} images in the unseen-faces style ({drawn:,} drawn), seed {args.seed}")
    return 0


def layout(args: argparse.Namespace, checkpoint: str | None = None):
    """The dataset layout options given on the command line, over those the checkpoint was trained with."""
    from imcaption.captcha.layouts import DatasetLayout

    saved = _saved_layout(checkpoint) if checkpoint else {}
    return with_options(DatasetLayout(**saved), given_options(args, DatasetLayout()))


def _saved_layout(checkpoint: str) -> dict:
    """A training checkpoint's dataset layout options ({} for exports, which carry no training config)."""
    from imcaption.captcha.reading_types import RECOGNIZER_FORMAT
    from imcaption.engine.checkpoint import is_onnx_file, load_model_file

    if is_onnx_file(checkpoint):
        return {}
    return load_model_file(checkpoint, RECOGNIZER_FORMAT).get("config", {}).get("data", {})


def cmd_cache(args: argparse.Namespace) -> int:
    from imcaption.captcha.dataset import open_dataset
    from imcaption.captcha.image_cache import build_cache
    from imcaption.captcha.task import CaptchaTrainConfig, training_input_size

    dataset = open_dataset(args.data_dir, layout(args))
    print(dataset.describe())
    size = training_input_size(CaptchaTrainConfig(height=args.height, width=args.width), dataset)
    cache = build_cache(dataset, size, args.workers, not args.quiet, args.rebuild)
    nbytes = cache.data_path.stat().st_size
    print(f"cache: {cache.data_path} ({cache.count:,} x {cache.size.tag} x 3, {nbytes:,} bytes)")
    return 0


def layout_options(parser: argparse.ArgumentParser, title: str) -> None:
    from imcaption.captcha.layouts import DatasetLayout

    add_config_options(parser, DatasetLayout(), title)


def add_data_commands(sub: argparse._SubParsersAction, defaults: CaptchaTrainConfig) -> None:
    """`generate` and `cache` under `imcaption captcha`; `defaults` is the training config, whose input size the
    cache's help names."""
    gen = sub.add_parser("generate", help="draw a synthetic words_captcha dataset")
    gen.add_argument("out_dir", metavar="OUT_DIR")
    gen.add_argument("--count", type=int, default=140_000, help="number of images (default: 140000)")
    gen.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    gen.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    gen.add_argument("--words", default=None, metavar="FILE", help="vocabulary, one word per line (default: built in)")
    gen.add_argument(
        "--style", choices=list(STYLE_HELP), default="faithful",
        help="; ".join(f"{name}: {text}" for name, text in STYLE_HELP.items()) + " (default: faithful)",
    )  # fmt: skip
    gen.add_argument(
        "--unseen-faces", type=int, default=0, metavar="N",
        help=f"with --style universal: also draw N images in the faces it holds out into OUT_DIR/{UNSEEN_FACES_FOLDER}"
        " (a dataset folder of its own, split as any: read its val split to score unseen faces)",
    )  # fmt: skip
    add_quiet(gen)
    gen.set_defaults(func=cmd_generate)

    cache = sub.add_parser("cache", help="decode every image once into a memory-mappable array")
    cache.add_argument("data_dir", metavar="DATA_DIR", help=DATA_HELP)
    size = defaults.input_size
    cache.add_argument("--height", type=int, default=0,
                       help=f"(default: 0, what training picks: {size.height} for words_captcha)")  # fmt: skip
    cache.add_argument("--width", type=int, default=0,
                       help=f"(default: 0, what training picks: {size.width} for words_captcha)")  # fmt: skip
    cache.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    cache.add_argument("--rebuild", action="store_true", help="rebuild even if a valid cache exists")
    add_quiet(cache)
    layout_options(cache, "dataset layout")
    cache.set_defaults(func=cmd_cache)
