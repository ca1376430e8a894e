"""Benchmark: train on one generator style, read another. How much each style generalizes.

    python -m bench.captcha_styles [--styles v1 faithful wide] [--count 42000] [--epochs 12]
                                   [--reference A8_PNG]

For each style: generates --count images (seed 0) into data/styles/<style> (6/7 labeled, as in the real set,
split 5/7 train, 1/7 validation, 1/7 test), trains the default sat recognizer for --epochs in
runs/styles_<style> (resuming an interrupted run), all with the same data size and steps, so the same compute.
A run folder that exists is resumed (or, finished, only re-read): delete runs/styles_<style> when its style
changed, or the old model is reported. Then every model reads every style's validation split (exact match,
greedy) and the real sample a8.png (label `lot`; not shipped with the repository, skipped when absent).
Writes bench/results/captcha_styles.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file, not with -m: make `bench` importable all the same
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESULTS = Path(__file__).parent / "results" / "captcha_styles.json"
A8_LABEL = "lot"  # the official slides list spec_train_val.txt for a0-a10: a8 is `lot`


def generate(style: str, count: int) -> Path:
    from imcaption.captcha.generator import STYLES, generate_dataset
    from imcaption.captcha.vocabulary import default_vocabulary

    data = Path("data/styles") / style
    # Always through the generator: it draws only what is missing, and refuses a folder drawn in an older version
    # of the style rather than training on it.
    generate_dataset(data, default_vocabulary(), count=count, seed=0, style=STYLES[style], progress=False)
    return data


def train(data: Path, run: Path, epochs: int) -> None:
    from imcaption.cli import main as cli

    args = ["captcha", "train", str(data), "--out", str(run), "--epochs", str(epochs), "--quiet"]
    if (run / "last.pt").is_file():
        args.append("--resume")
    if cli(args) != 0:
        raise SystemExit(f"training on {data} did not finish")


def exact_match_on(recognizer, data: Path) -> float:  # recognizer: a Recognizer, imported late
    from imcaption.captcha.cached_reading import read_cached
    from imcaption.captcha.dataset import CaptchaDataset
    from imcaption.captcha.image_cache import ensure_cache
    from imcaption.captcha.metrics import exact_match

    dataset = CaptchaDataset.open(data)
    val = dataset.split("val")
    read = read_cached(recognizer, ensure_cache(dataset, recognizer.size), val.indices, progress=False)
    return exact_match(read.words, dataset.words(val))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--styles", nargs="+", default=["v1", "faithful", "wide"])
    parser.add_argument("--count", type=int, default=42_000)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--reference", type=Path, default=Path("../shared/reference/a8.png"))
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    args = parser.parse_args()

    from bench.provenance import provenance
    from imcaption.api import Recognizer
    from imcaption.captcha.task import RECOGNIZER_FORMAT, CaptchaTrainConfig
    from imcaption.engine.checkpoint import load_checkpoint
    from imcaption.files import write_text_atomically
    from imcaption.visualize import read_metrics

    made_by = provenance(args.shared)
    datasets = {style: generate(style, args.count) for style in args.styles}
    models = {}
    for style, data in datasets.items():
        run = Path("runs") / f"styles_{style}"
        train(data, run, args.epochs)
        curve = read_metrics(run / "metrics.jsonl")
        speeds = [p["train_images_per_s"] for p in curve if "train_images_per_s" in p]
        recognizer = Recognizer.load(run / "best.pt")
        best = load_checkpoint(run / "best.pt", RECOGNIZER_FORMAT)
        recipe = CaptchaTrainConfig.from_dict(best["config"])
        reading = recognizer.read(args.reference) if args.reference.is_file() else None
        models[style] = {
            "train_minutes": round(curve[-1]["wall_minutes"], 2),
            "train_images_per_s": round(sum(speeds) / len(speeds), 1),
            "steps": curve[-1]["step"],
            "batch_size": recipe.loop.batch_size,
            "input_size": recipe.input_size.tag,
            "precision": best.get("precision", recipe.loop.precision),
            "val_exact_match": {other: exact_match_on(recognizer, datasets[other]) for other in datasets},
            "a8": reading and {"read": reading.word, "confidence": round(reading.confidence, 4)},
        }
        print(style, json.dumps(models[style]))
    results = {**made_by, "count": args.count, "epochs": args.epochs, "a8_label": A8_LABEL, "trained_on": models}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(RESULTS, json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
