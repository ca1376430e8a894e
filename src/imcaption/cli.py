"""The `imcaption` command: parse arguments, call the library, print."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from imcaption import __version__


def cmd_captcha_generate(args: argparse.Namespace) -> int:
    from imcaption.data.captcha_generator import generate_dataset
    from imcaption.data.vocabulary import default_vocabulary, read_vocabulary

    vocabulary = read_vocabulary(args.words) if args.words else default_vocabulary()
    drawn = generate_dataset(args.out_dir, vocabulary, args.count, args.seed, args.workers, progress=not args.quiet)
    kept = args.count - drawn
    print(f"{args.out_dir}: {args.count:,} images ({drawn:,} drawn, {kept:,} already there), seed {args.seed}")
    return 0


def cmd_captcha_cache(args: argparse.Namespace) -> int:
    from imcaption.data.captcha_dataset import CaptchaDataset
    from imcaption.data.image_cache import build_cache
    from imcaption.data.preprocess import ImageSize

    dataset = CaptchaDataset.open(args.data_dir)
    print(dataset.describe())
    cache = build_cache(dataset, ImageSize(args.height, args.width), args.workers, not args.quiet, args.rebuild)
    nbytes = cache.data_path.stat().st_size
    print(f"cache: {cache.data_path} ({cache.count:,} x {cache.size.tag} x 3, {nbytes:,} bytes)")
    return 0


def _add_captcha_commands(commands: argparse._SubParsersAction) -> None:
    captcha = commands.add_parser("captcha", help="the words_captcha dataset: generate, cache")
    sub = captcha.add_subparsers(dest="captcha_command", required=True, metavar="COMMAND")

    gen = sub.add_parser("generate", help="draw a synthetic words_captcha dataset")
    gen.add_argument("out_dir", metavar="OUT_DIR")
    gen.add_argument("--count", type=int, default=140_000, help="number of images (default 140000)")
    gen.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    gen.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    gen.add_argument("--words", default=None, metavar="FILE", help="vocabulary, one word per line (default: built in)")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(func=cmd_captcha_generate)

    cache = sub.add_parser("cache", help="decode every image once into a memory-mappable array")
    cache.add_argument("data_dir", metavar="DATA_DIR")
    cache.add_argument("--height", type=int, default=64)
    cache.add_argument("--width", type=int, default=128)
    cache.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    cache.add_argument("--rebuild", action="store_true", help="rebuild even if a valid cache exists")
    cache.add_argument("--quiet", action="store_true", help="no progress bar")
    cache.set_defaults(func=cmd_captcha_cache)

    run = sub.add_parser(
        "assignment", help="the whole job: generate if missing, cache, train, validate, predict test, score"
    )
    run.add_argument("data_dir", metavar="DATA_DIR", nargs="?", default="data/words_captcha")
    run.add_argument("--out", default="runs/captcha", metavar="RUN_DIR", help="default runs/captcha")
    run.add_argument("--model", choices=["sat", "ctc"], default="sat")
    run.add_argument("--epochs", type=int, default=None, help="default 10")
    run.add_argument("--count", type=int, default=140_000, help="images to generate if DATA_DIR has none")
    run.add_argument("--quiet", action="store_true")
    run.set_defaults(func=cmd_captcha_assignment)


def cmd_train(args: argparse.Namespace) -> int:
    if (Path(args.data_dir) / "annotations" / "captions_train.json").is_file():
        return cmd_train_captioner(args)
    if args.decoder or args.encoder:
        raise ValueError(f"{args.data_dir} is not a COCO-format caption folder; --decoder/--encoder are for captioning")
    from imcaption.checkpoint import load_checkpoint
    from imcaption.train import TrainConfig, Trainer

    config = TrainConfig(
        model=args.model,
        epochs=args.epochs or TrainConfig.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        height=args.height,
        width=args.width,
        augment=args.augment or TrainConfig.augment,
        label_smoothing=TrainConfig.label_smoothing if args.label_smoothing is None else args.label_smoothing,
        seed=args.seed,
        eval_every=args.eval_every,
        val_limit=args.val_limit,
        train_limit=args.train_limit,
        max_steps=args.max_steps,
        threads=args.threads,
    )
    last = Path(args.out) / "last.pt"
    if args.resume and last.is_file():
        # The run's own settings, not today's flags: resuming must replay the same schedule.
        config = TrainConfig.from_dict(load_checkpoint(last)["train_config"])
    trainer = Trainer(args.data_dir, args.out, config, progress=not args.quiet)
    if args.resume and last.is_file():
        trainer.resume(last)
        print(f"resuming {last} at step {trainer.state.step:,} of {trainer.total_steps:,}")
    elif last.is_file() and not args.resume:
        raise ValueError(f"{args.out} already holds a run; pass --resume to continue it or choose another --out")
    print(
        f"training {config.model} on {len(trainer.train_ids):,} images, validating on {len(trainer.val_ids):,}; "
        f"{trainer.total_steps:,} steps of {config.batch_size}"
    )
    try:
        state = trainer.run()
    except KeyboardInterrupt:
        print(f"\ninterrupted at step {trainer.state.step:,}; saved {last}. Continue with --resume.")
        return 130
    print(f"done: best validation exact match {state.best_exact_match:.4f}; checkpoints in {args.out}")
    return 0


def cmd_train_captioner(args: argparse.Namespace) -> int:
    from imcaption.caption_train import CaptionTrainConfig, CaptionTrainer

    config = CaptionTrainConfig(
        decoder=args.decoder or CaptionTrainConfig.decoder,
        encoder=args.encoder or CaptionTrainConfig.encoder,
        seed=args.seed,
        epochs=args.epochs or CaptionTrainConfig.epochs,
        limit_captions=args.limit_captions,
        image_size=args.image_size or (224 if args.encoder == "mobilenet" else CaptionTrainConfig.image_size),
        attention_penalty=(
            CaptionTrainConfig.attention_penalty if args.attention_penalty is None else args.attention_penalty
        ),
    )
    last = Path(args.out) / "last.pt"
    if last.is_file() and not args.resume:
        raise ValueError(f"{args.out} already holds a run; pass --resume to continue it or choose another --out")
    trainer = CaptionTrainer(args.data_dir, args.out, config, progress=not args.quiet)
    if args.resume and last.is_file():
        trainer.resume(last)
    print(
        f"training a {config.decoder} captioner ({config.encoder} encoder) on {len(trainer.train_images):,} "
        f"images, {len(trainer.pairs):,} captions; vocabulary {trainer.tokenizer.vocab_size:,}"
    )
    try:
        best = trainer.run()
    except KeyboardInterrupt:
        print(f"\ninterrupted at step {trainer.step:,}; saved {last}. Continue with --resume.")
        return 130
    print(f"done: best validation BLEU-4 {best:.4f}; checkpoints in {args.out}")
    return 0


def cmd_caption(args: argparse.Namespace) -> int:
    from imcaption.caption_train import attention_grid, caption_files, load_captioner
    from imcaption.visualize import plot_caption_attention

    loaded = load_captioner(args.checkpoint)
    beam = args.beam
    if args.attention and beam > 1:
        print("note: --attention draws the greedy caption; --beam is ignored", file=sys.stderr)
        beam = 1
    captions, attention, pixels = caption_files(loaded, args.images, beam)
    for path, caption in zip(args.images, captions, strict=True):
        print(f"{path}\t{caption}")
    if args.attention:
        if attention is None:
            raise ValueError(f"a {loaded.config.decoder} captioner has no attention; --attention needs sat")
        out = Path(args.attention)
        grid = attention_grid(loaded)
        for n, caption in enumerate(captions):
            target = out if len(captions) == 1 else out.with_name(f"{out.stem}_{n}{out.suffix}")
            maps = attention[n].view(attention.shape[1], *grid).numpy()
            plot_caption_attention(pixels[n], caption.split(), maps, target)
            print(f"attention: {target}")
    return 0


def _load_lexicon(path: str | None, tokenizer):  # noqa: ANN001, ANN202
    if not path:
        return None
    from imcaption.data.vocabulary import read_vocabulary
    from imcaption.decode import LexiconTrie

    return LexiconTrie(read_vocabulary(path), tokenizer)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from imcaption.checkpoint import load_recognizer
    from imcaption.data.captcha_dataset import CaptchaDataset
    from imcaption.data.image_cache import ensure_cache
    from imcaption.evaluate import recognition_report
    from imcaption.inference import read_cached

    recognizer = load_recognizer(args.checkpoint)
    dataset = CaptchaDataset.open(args.data_dir)
    split = dataset.split(args.split)
    truths = dataset.words(split)
    cache = ensure_cache(dataset, recognizer.size, progress=not args.quiet)
    trie = _load_lexicon(args.lexicon, recognizer.tokenizer)
    decoded = read_cached(recognizer, cache, split.indices, args.batch_size, args.beam, trie, not args.quiet)
    report = recognition_report(list(split.indices), decoded.words, truths)
    print(f"{args.split}: {report.count:,} images, exact match {report.exact_match:.4%}, CER {report.cer:.4%}")
    print("by length: " + ", ".join(f"{n} letters {acc:.2%}" for n, acc in report.by_length.items()))
    if report.confusions:
        print(
            "top confusions (true -> read): "
            + ", ".join(f"{t or '∅'}->{r or '∅'} x{n}" for t, r, n in report.confusions)
        )
    misread_path = Path(args.misread or Path(args.checkpoint).with_name(f"misread_{args.split}.txt"))
    misread_path.write_text("".join(f"a{i} {t} {p or '-'}\n" for i, t, p in report.misread))
    print(f"misread ids (id true read): {misread_path} ({len(report.misread):,} lines)")
    if args.json:
        Path(args.json).write_text(json.dumps(report.summary(), indent=2) + "\n")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from imcaption.checkpoint import load_recognizer
    from imcaption.data.captcha_dataset import CaptchaDataset
    from imcaption.data.image_cache import ensure_cache
    from imcaption.data.labels import LabelRow, write_labels
    from imcaption.inference import read_cached

    recognizer = load_recognizer(args.checkpoint)
    dataset = CaptchaDataset.open(args.data_dir)
    split = dataset.split(args.split)
    cache = ensure_cache(dataset, recognizer.size, progress=not args.quiet)
    trie = _load_lexicon(args.lexicon, recognizer.tokenizer)
    decoded = read_cached(recognizer, cache, split.indices, args.batch_size, args.beam, trie, not args.quiet)
    # A word the model cannot read at all still gets a line, so the answer file has every id.
    write_labels(args.out, [LabelRow(i, w or "-") for i, w in zip(split.indices, decoded.words, strict=True)])
    print(f"wrote {args.out}: {len(split):,} answers for a{split.start}-a{split.stop - 1}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from imcaption.data.labels import read_labels

    truth = {row.index: row.word for row in read_labels(args.labels)}
    answers = {row.index: row.word for row in read_labels(args.answers, check_words=False)}
    correct = sum(answers.get(i) == w for i, w in truth.items())
    missing = sum(i not in answers for i in truth)
    extra = sum(i not in truth for i in answers)
    print(
        f"{correct:,} / {len(truth):,} correct: exact match {correct / len(truth):.4%}"
        f" ({missing:,} ids missing, counted wrong; {extra:,} ids not in the labels, ignored)"
    )
    return 0


def cmd_read(args: argparse.Namespace) -> int:
    from imcaption.checkpoint import load_recognizer
    from imcaption.inference import read_files

    recognizer = load_recognizer(args.checkpoint)
    trie = _load_lexicon(args.lexicon, recognizer.tokenizer)
    beam = args.beam
    if args.attention and beam > 1:
        print("note: --attention draws the greedy reading; --beam is ignored", file=sys.stderr)
        beam = 1
    decoded, inputs = read_files(recognizer, args.images, beam, trie)
    for path, word, confidence in zip(args.images, decoded.words, decoded.confidences, strict=True):
        print(f"{path} {word or '-'} {confidence:.4f}")
    if args.attention:
        if decoded.attention is None:
            raise ValueError(f"{recognizer.config.kind} has no attention to draw; --attention needs a sat model")
        from imcaption.visualize import plot_attention

        out = Path(args.attention)
        for n, (path, word) in enumerate(zip(args.images, decoded.words, strict=True)):
            target = out if len(args.images) == 1 else out.with_name(f"{out.stem}_{n}{out.suffix}")
            plot_attention(inputs[n], word, decoded.attention[n].numpy(), target, title=f"{Path(path).name}: {word}")
            print(f"attention: {target}")
    return 0


def _add_model_commands(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train a captcha recognizer")
    train.add_argument("data_dir", metavar="DATA_DIR")
    train.add_argument("--out", required=True, metavar="RUN_DIR", help="checkpoints, metrics.jsonl, curves.png")
    train.add_argument("--model", choices=["sat", "ctc"], default="sat", help="captcha decoder (default sat)")
    train.add_argument(
        "--decoder",
        choices=["sat", "nic", "mrnn"],
        default=None,
        help="caption decoder, for COCO-format data (default sat)",
    )
    train.add_argument(
        "--encoder",
        choices=["cnn", "mobilenet"],
        default=None,
        help="captioning encoder: a from-scratch CNN (default) or the frozen ImageNet MobileNetV2 (for photos)",
    )
    train.add_argument(
        "--attention-penalty",
        type=float,
        default=None,
        metavar="LAMBDA",
        help="captioning, sat: weight of the doubly stochastic attention regularization (default 0: off)",
    )
    train.add_argument(
        "--limit-captions",
        type=int,
        default=0,
        metavar="N",
        help="captioning: train on the first N captions only (the tutorial uses 30000)",
    )
    train.add_argument(
        "--image-size",
        type=int,
        default=None,
        metavar="PX",
        help="captioning: square input side (default 128 for cnn, 224 for mobilenet)",
    )
    train.add_argument("--epochs", type=int, default=None, help="default 10 (captchas), 3 (captions)")
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default 3e-3)")
    train.add_argument("--height", type=int, default=64, help="model input height (default 64)")
    train.add_argument("--width", type=int, default=128, help="model input width (default 128)")
    train.add_argument(
        "--augment",
        choices=["shift", "full", "color", "none"],  # augment.AUGMENT_MODES, without importing torch
        default=None,
        help="shift: whole-pixel shifts + color-channel permutation (default); full: affine warp + permutation; "
        "color: permutation only; none",
    )
    train.add_argument(
        "--label-smoothing", type=float, default=None, metavar="EPS", help="captchas: default 0.1; 0 turns it off"
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--eval-every", type=int, default=0, metavar="STEPS", help="default: once per epoch")
    train.add_argument("--val-limit", type=int, default=0, metavar="N", help="validate on the first N only")
    train.add_argument("--train-limit", type=int, default=0, metavar="N", help="train on the first N only")
    train.add_argument("--max-steps", type=int, default=0, help="stop after this many steps")
    train.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    train.add_argument("--resume", action="store_true", help="continue RUN_DIR/last.pt where it stopped")
    train.add_argument("--quiet", action="store_true")
    train.set_defaults(func=cmd_train)

    def reading_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--beam", type=int, default=1, metavar="K", help="beam width (default 1: greedy)")
        p.add_argument("--lexicon", default=None, metavar="FILE", help="only output words listed in FILE")

    def split_reader(name: str, help_text: str, default_split: str) -> argparse.ArgumentParser:
        p = commands.add_parser(name, help=help_text)
        p.add_argument("checkpoint", metavar="CHECKPOINT")
        p.add_argument("data_dir", metavar="DATA_DIR")
        p.add_argument("--split", choices=["train", "val", "test"], default=default_split)
        p.add_argument("--batch-size", type=int, default=500)
        p.add_argument("--quiet", action="store_true")
        reading_options(p)
        return p

    evaluate = split_reader("evaluate", "accuracy, CER and confusions on a labeled split", "val")
    evaluate.add_argument("--misread", default=None, metavar="FILE", help="where to list misread ids")
    evaluate.add_argument("--json", default=None, metavar="FILE", help="also write the report as JSON")
    evaluate.set_defaults(func=cmd_evaluate)

    predict = split_reader("predict", "write an answer file (`a120000 word` per line)", "test")
    predict.add_argument("--out", required=True, metavar="ANSWERS")
    predict.set_defaults(func=cmd_predict)

    score = commands.add_parser("score", help="whole-word accuracy of an answer file against a label file")
    score.add_argument("answers", metavar="ANSWERS")
    score.add_argument("labels", metavar="LABELS")
    score.set_defaults(func=cmd_score)

    read = commands.add_parser("read", help="read captcha image files of any size and mode")
    read.add_argument("checkpoint", metavar="CHECKPOINT")
    read.add_argument("images", nargs="+", metavar="IMAGE")
    read.add_argument("--attention", default=None, metavar="OUT.png", help="draw each character's attention")
    reading_options(read)
    read.set_defaults(func=cmd_read)

    caption = commands.add_parser("caption", help="caption image files with a trained captioner")
    caption.add_argument("checkpoint", metavar="CHECKPOINT")
    caption.add_argument("images", nargs="+", metavar="IMAGE")
    caption.add_argument("--beam", type=int, default=1, metavar="K", help="beam width (default 1: greedy)")
    caption.add_argument("--attention", default=None, metavar="OUT.png", help="per-word attention grid (sat)")
    caption.set_defaults(func=cmd_caption)


def cmd_captcha_assignment(args: argparse.Namespace) -> int:
    from imcaption.pipeline import run_assignment
    from imcaption.train import TrainConfig

    config = TrainConfig(model=args.model, epochs=args.epochs or TrainConfig.epochs)
    try:
        run_assignment(args.data_dir, args.out, config, count=args.count, progress=not args.quiet)
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


def cmd_scenes_generate(args: argparse.Namespace) -> int:
    from imcaption.data.scenes import generate_scenes

    generate_scenes(args.out_dir, args.count, args.seed, args.size, progress=not args.quiet)
    print(
        f"{args.out_dir}: {args.count:,} scenes; captions in annotations/captions_{{train,val}}.json, "
        "boxes in annotations/objects.json"
    )
    return 0


def _add_scenes_commands(commands: argparse._SubParsersAction) -> None:
    scenes = commands.add_parser("scenes", help="a synthetic COCO-format captioning set")
    sub = scenes.add_subparsers(dest="scenes_command", required=True, metavar="COMMAND")
    gen = sub.add_parser("generate", help="draw colored shapes on textures, with captions and boxes")
    gen.add_argument("out_dir", metavar="OUT_DIR")
    gen.add_argument("--count", type=int, default=6000)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    gen.add_argument("--quiet", action="store_true")
    gen.set_defaults(func=cmd_scenes_generate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imcaption", description="Images to text: word-captcha recognition and image captioning."
    )
    parser.add_argument("--version", action="version", version=f"imcaption {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_captcha_commands(commands)
    _add_model_commands(commands)
    _add_scenes_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
