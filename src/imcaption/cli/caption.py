"""`imcaption caption ...`: the captioning commands. Parsing and printing only; the work is in imcaption.captioning."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imcaption.cli.options import add_config_options, add_device, add_quiet, given_options, numbered


def cmd_scenes(args: argparse.Namespace) -> int:
    from imcaption.captioning.scenes import generate_scenes

    generate_scenes(args.out_dir, args.count, args.seed, args.size, progress=not args.quiet)
    print(
        f"{args.out_dir}: {args.count:,} scenes; captions in annotations/captions_{{train,val}}.json, "
        "boxes in annotations/objects.json"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from imcaption.captioning.task import CAPTIONER_FORMAT, CaptionTask, CaptionTrainConfig
    from imcaption.engine.interrupt import Interrupted
    from imcaption.engine.run import open_run
    from imcaption.text.word_tokenizer import WordTokenizer

    def make_task(config: CaptionTrainConfig, saved: dict | None) -> CaptionTask:
        tokenizer = WordTokenizer.from_dict(saved["tokenizer"]) if saved else None
        return CaptionTask(args.data_dir, config, tokenizer, progress=not args.quiet)

    options = given_options(args, CaptionTrainConfig())
    trainer = open_run(args.out, CaptionTrainConfig, make_task, CAPTIONER_FORMAT, options, args.resume, not args.quiet)
    task = trainer.task
    if trainer.state.step:
        print(f"resuming {args.out}/last.pt at step {trainer.state.step:,} of {trainer.stop_step:,}")
    print(
        f"training a {task.spec.decoder} captioner ({task.spec.encoder} encoder, {task.spec.image_size} px) on "
        f"{len(task.train_images):,} images, {len(task.pairs):,} captions; vocabulary {task.tokenizer.vocab_size:,}"
    )
    try:
        state = trainer.run()
    except Interrupted as stop:
        print(f"\n{stop} at step {trainer.state.step:,}; saved {args.out}/last.pt. Continue with --resume.")
        return stop.exit_code
    print(f"done: best validation BLEU-4 {state.best_metric:.4f}; checkpoints in {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from imcaption.api import Captioner
    from imcaption.captioning.coco import read_coco_captions
    from imcaption.captioning.metrics import caption_scores
    from imcaption.captioning.task import coco_split_files

    captioner = Captioner.load(args.checkpoint, args.device)
    data = Path(args.data_dir)
    images = read_coco_captions(coco_split_files(data)[1], data / "images")
    captions = captioner.caption([image.path for image in images], beam=args.beam)
    references = {n: list(image.captions) for n, image in enumerate(images)}
    scores = caption_scores(references, {n: c.text for n, c in enumerate(captions)})
    print(f"{len(images):,} images of captions_val.json, beam {args.beam}: "
          + ", ".join(f"{name} {value:.4f}" for name, value in scores.items()))  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(scores, indent=2) + "\n")
    return 0


def cmd_caption(args: argparse.Namespace) -> int:
    from imcaption.api import Captioner
    from imcaption.visualize import plot_caption_attention

    captioner = Captioner.load(args.checkpoint, args.device)
    beam = args.beam
    if args.attention and beam > 1:
        print("note: --attention draws the greedy caption; --beam is ignored", file=sys.stderr)
        beam = 1
    if args.attention and captioner.spec.decoder != "sat":
        raise ValueError(f"a {captioner.spec.decoder} captioner has no attention; --attention needs sat")
    captions = captioner.caption(args.images, beam, attention=bool(args.attention))
    for path, caption in zip(args.images, captions, strict=True):
        print(f"{path}\t{caption.text}")
    if args.attention:
        for n, (path, caption) in enumerate(zip(args.images, captions, strict=True)):
            target = numbered(args.attention, n, len(captions))
            plot_caption_attention(captioner.pixels([path])[0], caption.text.split(), caption.attention, target)
            print(f"attention: {target}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from imcaption.captioning.captioner import export_captioner

    out = export_captioner(args.checkpoint, args.out)
    before, after = Path(args.checkpoint).stat().st_size, out.stat().st_size
    print(f"wrote {out}: weights-only model, {after:,} bytes ({after / before:.0%} of the checkpoint)")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    from imcaption.captioning.task import CaptionTrainConfig

    caption = commands.add_parser("caption", help="image captioning: scenes, train, evaluate, caption, export")
    sub = caption.add_subparsers(dest="caption_command", required=True, metavar="COMMAND")

    scenes = sub.add_parser("scenes", help="draw a synthetic COCO-format set: colored shapes, captions, boxes")
    scenes.add_argument("out_dir", metavar="OUT_DIR")
    scenes.add_argument("--count", type=int, default=6000, help="(default: 6000)")
    scenes.add_argument("--seed", type=int, default=0, help="(default: 0)")
    scenes.add_argument("--size", type=int, default=128, help="image side in pixels (default: 128)")
    add_quiet(scenes)
    scenes.set_defaults(func=cmd_scenes)

    train = sub.add_parser("train", help="train a captioner on COCO-format data", description="Train a captioner.")
    train.add_argument("data_dir", metavar="DATA_DIR", help="with annotations/captions_{train,val}.json and images/")
    train.add_argument("--out", required=True, metavar="RUN_DIR", help="checkpoints, metrics.jsonl, curves.png")
    train.add_argument("--resume", action="store_true", help="continue RUN_DIR/last.pt with its saved settings")
    add_quiet(train)
    add_config_options(train, CaptionTrainConfig(), "training options")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="BLEU-1..4, METEOR, ROUGE-L, CIDEr on captions_val.json")
    evaluate.add_argument("checkpoint", metavar="MODEL", help="a training checkpoint (best.pt) or an export")
    evaluate.add_argument("data_dir", metavar="DATA_DIR")
    evaluate.add_argument("--beam", type=int, default=1, metavar="K", help="beam width (default: 1, greedy)")
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

    export = sub.add_parser("export", help="write a weights-only model file (safetensors, no optimizer, no pickle)")
    export.add_argument("checkpoint", metavar="CHECKPOINT")
    export.add_argument("--out", required=True, metavar="MODEL", help="e.g. model.safetensors")
    export.set_defaults(func=cmd_export)
