"""`imcaption caption ...`: the captioning commands. Parsing and printing only; the work is in imcaption.captioning."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from imcaption.cli.common import (
    add_device,
    add_export_command,
    add_quiet,
    add_train_command,
    attention_beam,
    numbered,
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
    from imcaption.captioning.metrics import caption_scores

    data = open_caption_data(args.data_dir, args.image_dir)  # a bad data set is refused before the model loads
    split = data.held_out(args.split)
    images = data.read(split)
    print(f"found {data.description}")
    captioner = Captioner.load(args.checkpoint, args.device)
    captions = captioner.caption([image.path for image in images], beam=args.beam)
    references = {n: list(image.captions) for n, image in enumerate(images)}
    scores = caption_scores(references, {n: c.text for n, c in enumerate(captions)})
    print(f"{len(images):,} images of the {split} split ({data.files[split].name}), beam {args.beam}: "
          + ", ".join(f"{name} {value:.4f}" for name, value in scores.items()))  # fmt: skip
    if args.json:
        write_text_atomically(args.json, json.dumps(scores, indent=2) + "\n")
    return 0


def cmd_caption(args: argparse.Namespace) -> int:
    from imcaption.api import Captioner
    from imcaption.visualize import plot_caption_attention

    captioner = Captioner.load(args.checkpoint, args.device)
    beam = attention_beam(args, captioner.spec.decoder == "sat", captioner.spec.decoder)
    # With attention plots, decode each file once: the resized images are also what the plots draw on.
    images = list(captioner.pixels(args.images)) if args.attention else args.images
    captions = captioner.caption(images, beam, attention=bool(args.attention))
    for path, caption in zip(args.images, captions, strict=True):
        print(f"{path}\t{caption.text}")
    if args.attention:
        for n, (pixels, caption) in enumerate(zip(images, captions, strict=True)):
            target = numbered(args.attention, n, len(captions))
            plot_caption_attention(pixels, caption.text.split(), caption.attention, target)
            print(f"attention: {target}")
    return 0


COMMANDS = ("scenes", "train", "evaluate", "caption", "export")


def add_commands(commands: argparse._SubParsersAction) -> None:
    from imcaption.captioning.task import CaptionTrainConfig

    caption = commands.add_parser("caption", help="image captioning: scenes, train, evaluate, caption, export")
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
    evaluate.add_argument("--beam", type=int, default=1, metavar="K", help="beam width (default: 1, greedy)")
    evaluate.add_argument(
        "--split", choices=["test", "val"], default=None,
        help="the split to score (default: test where the set has one, else val)",
    )  # fmt: skip
    evaluate.add_argument(
        "--image-dir", default=None, metavar="DIR", help="the images' folder where it is not beside the caption file"
    )
    evaluate.add_argument("--json", default=None, metavar="FILE", help="also write the scores as JSON")
    add_device(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    run = sub.add_parser("caption", help="caption image files of any size and mode")
    run.add_argument("checkpoint", metavar="MODEL", help="a training checkpoint (best.pt) or an export")
    run.add_argument("images", nargs="+", metavar="IMAGE")
    run.add_argument("--beam", type=int, default=1, metavar="K", help="beam width (default: 1, greedy)")
    run.add_argument("--attention", default=None, metavar="OUT.png", help="per-word attention grid (sat)")
    add_device(run)
    run.set_defaults(func=cmd_caption)

    add_export_command(
        sub, "imcaption.captioning.captioner:export_captioner", "imcaption.deploy.caption_onnx:export_captioner_onnx"
    )
