"""`imcaption caption ...`: the captioning commands. Parsing and printing only; the work is in imcaption.captioning."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from imcaption.cli.common import (
    add_device,
    add_export_command,
    add_precision,
    add_quiet,
    add_train_command,
    attention_beam,
    numbered,
    positive_int,
    train_command,
)
from imcaption.files import write_text_atomically

if TYPE_CHECKING:
    from imcaption.engine.loop import Trainer


def cmd_scenes(args: argparse.Namespace) -> int:
    from imcaption.captioning.scenes import generate_scenes

    generate_scenes(args.out_dir, args.count, args.seed, args.size, test_count=args.test_count, progress=not args.quiet)
    print(
        f"{args.out_dir}: {args.count:,} scenes for training and validation and more for the test split; "
        "captions in annotations/captions_{train,val,test}.json, boxes in annotations/objects.json"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from imcaption.captioning.task import CaptionTask

    def describe(trainer: Trainer) -> str:
        task, spec, config = trainer.task, trainer.task.spec, trainer.task.config
        dropped = f" ({task.dropped_captions:,} longer than {spec.max_length} tokens dropped)"
        rare = f", words seen fewer than {config.min_word_count} times are <unk>" if config.min_word_count > 1 else ""
        return (
            f"found {task.data.description}\n"
            f"training a {spec.decoder} captioner ({spec.encoder} encoder, {spec.image_size} px) on "
            f"{len(task.train_images):,} images, {len(task.pairs):,} captions"
            f"{dropped if task.dropped_captions else ''}; vocabulary {task.tokenizer.vocab_size:,}{rare}"
            f"; {trainer.precision}{trainer.world_text()}"
        )

    return train_command(args, CaptionTask, describe, "BLEU-4")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from imcaption.api import Captioner
    from imcaption.captioning.layouts import open_caption_data
    from imcaption.captioning.metrics import caption_report

    data = open_caption_data(args.data_dir, args.image_dir)  # a bad data set is refused before the model loads
    split = data.held_out(args.split)
    images = data.read(split)
    if not args.quiet:
        print(f"found {data.description}")
    captioner = Captioner.load(args.checkpoint, args.device, args.precision)
    paths = [image.path for image in images]
    captions = captioner.caption(paths, beam=args.beam, batch_size=args.batch_size, progress=not args.quiet)
    references = {n: list(image.captions) for n, image in enumerate(images)}
    scores, skipped = caption_report(references, {n: c.text for n, c in enumerate(captions)})
    print(f"{len(images):,} images of the {split} split ({data.files[split].name}), beam {args.beam}: "
          + ", ".join(f"{name} {value:.4f}" for name, value in scores.items()))  # fmt: skip
    for name, reason in skipped.items():
        print(f"{name.upper()} skipped: {reason}", file=sys.stderr)
    if args.json:
        written = {**scores, "skipped": skipped} if skipped else scores
        write_text_atomically(args.json, json.dumps(written, indent=2) + "\n")
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from imcaption.api import Captioner
    from imcaption.visualize import plot_caption_attention

    captioner = Captioner.load(args.checkpoint, args.device, args.precision)
    beam = attention_beam(args, captioner.spec.decoder == "sat", captioner.spec.decoder)
    # With attention plots, decode each file once: the resized images are also what the plots draw on.
    images = list(captioner.pixels(args.images)) if args.attention else args.images
    captions = captioner.caption(
        images, beam, attention=bool(args.attention), batch_size=args.batch_size, progress=not args.quiet
    )
    for path, caption in zip(args.images, captions, strict=True):
        print(f"{path}\t{caption.text}")
    if args.attention:
        for n, (pixels, caption) in enumerate(zip(images, captions, strict=True)):
            target = numbered(args.attention, n, len(captions))
            plot_caption_attention(pixels, caption.text.split(), caption.attention, target)
            print(f"attention: {target}")
    return 0


COMMANDS = ("scenes", "train", "evaluate", "describe", "export")

# Commands renamed since they were first spelled, by their old name: the old spelling still runs, with a note.
RENAMED = {"caption": "describe"}


def add_commands(commands: argparse._SubParsersAction) -> None:
    from imcaption.captioning.task import CaptionTrainConfig

    caption = commands.add_parser("caption", help="image captioning: " + ", ".join(COMMANDS))
    sub = caption.add_subparsers(dest="caption_command", required=True, metavar="COMMAND")

    scenes = sub.add_parser("scenes", help="draw a synthetic COCO-format set: colored shapes, captions, boxes")
    scenes.add_argument("out_dir", metavar="OUT_DIR")
    scenes.add_argument("--count", type=int, default=6000, help="scenes for training and validation (default: 6000)")
    scenes.add_argument(
        "--test-count", type=int, default=None, metavar="N",
        help="further scenes held out as the test split (default: 10 %% of --count)",
    )  # fmt: skip
    scenes.add_argument("--seed", type=int, default=0, help="(default: 0)")
    scenes.add_argument("--size", type=int, default=128, help="image side in pixels (default: 128)")
    add_quiet(scenes)
    scenes.set_defaults(func=cmd_scenes)

    data_help = (
        "a caption set, as a folder or a caption file: a COCO captions folder (annotations/captions_{train,val}.json"
        " + images/), a COCO 2014 tree (annotations/captions_train2014.json + train2014/, val likewise) or one of its"
        " annotation files, or a Karpathy split file (dataset_coco.json, dataset_flickr8k.json, ...); the format is"
        " read from the content. val picks best.pt"
    )
    train = add_train_command(sub, CaptionTrainConfig(), "train a captioner on COCO-format data", data_help)
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="BLEU-1..4, METEOR, ROUGE-L, CIDEr on a held-out split")
    evaluate.add_argument("checkpoint", metavar="MODEL", help="a training checkpoint (best.pt) or an export")
    evaluate.add_argument("data_dir", metavar="DATA", help="a caption set in any layout `caption train` reads")
    _reading_options(evaluate)
    evaluate.add_argument(
        "--split", choices=["test", "val"], default=None,
        help="the split to score (default: test where the set has one, else val)",
    )  # fmt: skip
    evaluate.add_argument(
        "--image-dir", default=None, metavar="DIR", help="the images' folder where it is not beside the caption file"
    )
    evaluate.add_argument(
        "--json", default=None, metavar="FILE", help="also write the scores as JSON (and any metric skipped, and why)"
    )
    evaluate.set_defaults(func=cmd_evaluate)

    describe = sub.add_parser("describe", help="caption image files of any size and mode")
    describe.add_argument("checkpoint", metavar="MODEL", help="a training checkpoint (best.pt) or an export")
    describe.add_argument("images", nargs="+", metavar="IMAGE")
    describe.add_argument("--attention", default=None, metavar="OUT.png", help="per-word attention grid (sat)")
    _reading_options(describe)
    describe.set_defaults(func=cmd_describe)

    add_export_command(
        sub, "imcaption.captioning.captioner:export_captioner", "imcaption.deploy.caption_onnx:export_captioner_onnx"
    )


def _reading_options(parser: argparse.ArgumentParser) -> None:
    """What `evaluate` and `describe` share: the search, the batches, the device and number format, the bars."""
    from imcaption.captioning.reading_types import CAPTION_BATCH, CAPTION_PRECISION

    parser.add_argument(
        "--beam", type=positive_int, default=1, metavar="K", help="beam width (default: 1, greedy search)"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=CAPTION_BATCH, metavar="N",
        help="images read and captioned at a time (default: %(default)s)",
    )  # fmt: skip
    add_device(parser)
    add_precision(
        parser,
        CAPTION_PRECISION,
        "number format of the encoder: fp32 (default: captions exactly as training's validation scored), bf16, or"
        " auto (bf16 where the processor has it in hardware, AMX or AVX-512 BF16; fp32 elsewhere and for ONNX"
        " models); the decoder runs in fp32 either way",
    )
    add_quiet(parser)
