"""`imcaption captcha evaluate`, `predict`, `score` and `read`: reading with a trained model. Parsing and printing
only; the work is in imcaption.captcha and imcaption.api."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from imcaption.cli.captcha_data import DATA_HELP, layout, layout_options
from imcaption.cli.common import add_device, add_quiet, attention_beam, numbered, positive_int
from imcaption.files import write_text_atomically

__all__ = ["add_reading_commands"]


def _lexicon(recognizer, path: str | None):
    if not path:
        return None
    from imcaption.captcha.vocabulary import read_vocabulary

    return recognizer.lexicon(read_vocabulary(path))


def _read_split(args: argparse.Namespace):
    """The dataset, the split, its readings and how they were searched, for evaluate and predict."""
    from imcaption.api import Recognizer
    from imcaption.captcha.cached_reading import read_cached, search_name
    from imcaption.captcha.dataset import open_dataset
    from imcaption.captcha.image_cache import ensure_cache

    recognizer = Recognizer.load(args.checkpoint, args.device, args.precision)
    dataset = open_dataset(args.data_dir, layout(args, args.checkpoint))
    if not args.quiet:
        print(dataset.describe())
    split = dataset.split(args.split)
    cache = ensure_cache(dataset, recognizer.size, progress=not args.quiet)
    lexicon = _lexicon(recognizer, args.lexicon)
    beam = recognizer.answer_beam if args.beam is None else args.beam
    decoded = read_cached(
        recognizer, cache, split.indices, args.batch_size, beam, lexicon, not args.quiet, views=args.views
    )
    views = f", {args.views} views" if args.views > 1 else ""
    return dataset, split, decoded, search_name(beam) + views


def cmd_evaluate(args: argparse.Namespace) -> int:
    from imcaption.captcha.metrics import recognition_report

    dataset, split, decoded, search = _read_split(args)
    report = recognition_report(list(split.indices), decoded.words, dataset.words(split))
    scores = f"exact match {report.exact_match:.4%}, CER {report.cer:.4%}"
    print(f"{args.split} ({search}): {report.count:,} images, {scores}")
    print("by length: " + ", ".join(f"{n} letters {acc:.2%}" for n, acc in report.by_length.items()))
    if report.confusions:
        shown = ", ".join(f"{t or '∅'}->{r or '∅'} x{n}" for t, r, n in report.confusions)
        print(f"top confusions (true -> read): {shown}")
    misread_path = Path(args.misread or Path(args.checkpoint).with_name(f"misread_{args.split}.txt"))
    lines = (f"{dataset.image_id(i)}{_separator(dataset)}{t}{_separator(dataset)}{p or '-'}\n"
             for i, t, p in report.misread)  # fmt: skip
    write_text_atomically(misread_path, "".join(lines))
    print(f"misread ids (id true read): {misread_path} ({len(report.misread):,} lines)")
    if args.json:
        write_text_atomically(args.json, json.dumps(report.summary(), indent=2) + "\n")
    return 0


def _separator(dataset) -> str:
    """words_captcha files use one space (`a123 word`); file names and labels of other layouts may hold spaces."""
    return " " if dataset.is_words_layout else "\t"


def cmd_predict(args: argparse.Namespace) -> int:
    from imcaption.captcha.labels import LabelRow, write_labels

    dataset, split, decoded, search = _read_split(args)
    if not len(split):
        raise ValueError(f"the {args.split} split of {args.data_dir} is empty; choose another with --split")
    # A word the model cannot read at all still gets a line, so the answer file has every id.
    if dataset.is_words_layout:
        write_labels(args.out, [LabelRow(i, w or "-") for i, w in zip(split.indices, decoded.words, strict=True)])
    else:
        lines = (f"{dataset.files[i]}\t{w}\n" for i, w in zip(split.indices, decoded.words, strict=True))
        write_text_atomically(args.out, "".join(lines))
    first, last = dataset.image_id(split.indices[0]), dataset.image_id(split.indices[-1])
    print(f"wrote {args.out}: {len(split):,} answers for {first} ... {last} ({search})")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from imcaption.captcha.labels import read_labels

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
    from imcaption.api import Recognizer

    if args.onnx:
        from imcaption.deploy.onnx_export import onnx_reader_for

        if args.precision == "bf16":
            raise ValueError("--onnx reads in fp32; drop --precision bf16 or --onnx")
        recognizer = onnx_reader_for(args.checkpoint)
    else:
        recognizer = Recognizer.load(args.checkpoint, args.device, args.precision)
    if args.beam is None:  # the model's own width, except that attention plots come from greedy search
        args.beam = 1 if args.attention else recognizer.answer_beam
    beam = attention_beam(args, recognizer.config.kind == "sat", recognizer.config.kind)
    # With attention plots, decode each file once: the model inputs are also what the plots draw on.
    images = list(recognizer.inputs(args.images)) if args.attention else args.images
    readings = recognizer.read(images, beam, _lexicon(recognizer, args.lexicon), attention=bool(args.attention))
    for path, reading in zip(args.images, readings, strict=True):
        print(f"{path} {reading.word or '-'} {reading.confidence:.4f}")
    if args.attention:
        from imcaption.visualize import plot_attention

        for n, (path, reading) in enumerate(zip(args.images, readings, strict=True)):
            target = numbered(args.attention, n, len(args.images))
            plot_attention(
                images[n], reading.word, reading.attention, target, title=f"{Path(path).name}: {reading.word}"
            )
            print(f"attention: {target}")
    return 0


def _reading_options(parser: argparse.ArgumentParser) -> None:
    from imcaption.captcha.reading_types import ANSWER_BEAM, READ_PRECISION

    parser.add_argument(
        "--beam", type=positive_int, default=None, metavar="K",
        help=f"beam width (default: {ANSWER_BEAM} for sat and par checkpoints, 1 (greedy) for ctc, crnn and ONNX "
        "models; --attention draws greedy readings)",
    )  # fmt: skip
    parser.add_argument("--lexicon", default=None, metavar="FILE", help="only output words listed in FILE")
    add_device(parser)
    parser.add_argument(
        "--precision", choices=["fp32", "bf16", "auto"], default=READ_PRECISION,
        help="number format of the encoder: auto (default: bf16 where the processor has it in hardware, AMX or "
        "AVX-512 BF16, faster: BENCHMARKS.md; fp32 elsewhere and for ONNX models), fp32 (reads exactly "
        "as training's validation measured), bf16",
    )  # fmt: skip


def _split_reader(sub: argparse._SubParsersAction, name: str, help_text: str, split: str) -> argparse.ArgumentParser:
    from imcaption.captcha.reading_types import READ_BATCH

    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("checkpoint", metavar="MODEL", help="a training checkpoint (best.pt) or an export")
    parser.add_argument("data_dir", metavar="DATA_DIR", help=DATA_HELP)
    parser.add_argument("--split", choices=["train", "val", "test"], default=split, help=f"(default: {split})")
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=READ_BATCH,
        help="images decoded at a time (default: %(default)s, which keeps the decoder's working set in the cache)",
    )
    _reading_options(parser)
    parser.add_argument(
        "--views", type=int, choices=[1, 3, 5], default=1,
        help="test-time augmentation: read each image as it is (1, default), also shifted left and right (3), "
        "and up and down (5), averaging the copies' letter probabilities at each step; sat and par checkpoints "
        "only, that many times slower",
    )  # fmt: skip
    add_quiet(parser)
    layout_options(parser, "dataset layout (default: as the checkpoint was trained)")
    return parser


def add_reading_commands(sub: argparse._SubParsersAction) -> None:
    """`evaluate`, `predict`, `score` and `read` under `imcaption captcha`."""
    evaluate = _split_reader(sub, "evaluate", "accuracy, CER and confusions on a labeled split", "val")
    evaluate.add_argument("--misread", default=None, metavar="FILE", help="where to list misread ids")
    evaluate.add_argument("--json", default=None, metavar="FILE", help="also write the report as JSON")
    evaluate.set_defaults(func=cmd_evaluate)

    predict = _split_reader(sub, "predict", "write an answer file (`a120000 word` per line)", "test")
    predict.add_argument("--out", required=True, metavar="ANSWERS")
    predict.set_defaults(func=cmd_predict)

    score = sub.add_parser("score", help="whole-word accuracy of an answer file against a label file")
    score.add_argument("answers", metavar="ANSWERS")
    score.add_argument("labels", metavar="LABELS")
    score.set_defaults(func=cmd_score)

    read = sub.add_parser("read", help="read captcha image files of any size and mode")
    read.add_argument("checkpoint", metavar="MODEL", help="a training checkpoint (best.pt) or an export")
    read.add_argument("images", nargs="+", metavar="IMAGE")
    read.add_argument("--attention", default=None, metavar="OUT.png", help="draw each character's attention (sat)")
    read.add_argument(
        "--onnx", action="store_true", help="read with ONNX Runtime (a checkpoint is exported to ONNX first)"
    )
    _reading_options(read)
    read.set_defaults(func=cmd_read)
