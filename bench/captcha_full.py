"""Benchmark: the full protocol (BENCHMARKS.md, "Recognizers") for one recognizer.

    python -m bench.captcha_full --model sat [--data data/words_captcha] [--run runs/bench_sat] [--epochs N]
    python -m bench.captcha_full --model par --minutes 60 --name par_60 [-- TRAIN_OPTIONS...]

Uses the dataset in --data (generate it with bench/captcha_data.py: 140,000 images, seed 0), trains with the
default configuration (resuming an interrupted run), evaluates the best checkpoint on the 20,000 validation
images, predicts the test split into an answer file, scores it against test_labels.txt, times greedy inference
from the cache (the median of three passes over validation, bench/timing.py), and writes
bench/results/captcha_full_<model>.json plus the curve as bench/results/curve_<model>.png.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
from pathlib import Path
from typing import Any

from imcaption.files import write_text_atomically

if __package__ in (None, ""):  # run as a file, not with -m: make `bench` importable all the same
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESULTS = Path(__file__).parent / "results"
SEARCH_BEAMS = (1, 3, 5)


def minutes_to(curve: list[dict], level: float) -> float | None:
    return next((round(p["wall_minutes"], 2) for p in curve if p["val_exact_match"] >= level), None)


def same_run_results(previous_results: Path, curve: list[dict]) -> dict:
    """The results written before for this very training run (same last point of the curve), or {}: when only
    the evaluation reruns on a finished run, what was recorded while it trained still holds."""
    previous = json.loads(previous_results.read_text()) if previous_results.is_file() else {}
    before, now = previous.get("curve", [{}])[-1], curve[-1]
    last_point = (before.get("step"), round(before.get("wall_minutes", -1), 2))
    return previous if last_point == (now["step"], round(now["wall_minutes"], 2)) else {}


def peak_rss_gb(previous: dict) -> float:
    """This process's peak RSS, or the one recorded while the same run trained, since training is the larger."""
    peak = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
    return max(peak, previous.get("peak_rss_gb", 0.0))


def search_table(
    recognizer: Any, cache: Any, indices: Any, truth: list[str], trie: Any, known: dict[str, float]
) -> dict[str, float]:
    """Validation exact match for each beam width, open vocabulary and held to the training labels' lexicon:
    what the answer file's search is chosen from (never from the test split). `known`: entries already read
    (the same deterministic readings), not read again."""
    from imcaption.captcha.cached_reading import read_cached

    table = {}
    for beam in SEARCH_BEAMS:
        for name, lexicon in (("open", None), ("lexicon", trie)):
            key = f"beam{beam}_{name}"
            if key in known:
                table[key] = known[key]
                continue
            words = read_cached(recognizer, cache, indices, beam=beam, lexicon=lexicon, progress=False).words
            table[key] = sum(w == t for w, t in zip(words, truth, strict=True)) / len(truth)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["sat", "par", "ctc", "crnn"], default="sat")
    parser.add_argument("--name", default=None, help="results name (default: the model's)")
    parser.add_argument("--data", default="data/words_captcha")
    parser.add_argument("--run", default=None, help="run folder (default runs/bench_<name>)")
    parser.add_argument("--epochs", type=int, default=None, help="override the default epochs")
    parser.add_argument("--minutes", type=float, default=None, help="train for this time budget instead of epochs")
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args, options = parser.parse_args(argv[:split]), argv[split + 1 :]
    name = args.name or args.model

    from bench.provenance import provenance
    from bench.timing import median_rate
    from imcaption.api import Recognizer
    from imcaption.captcha.cached_reading import read_cached, search_name
    from imcaption.captcha.dataset import CaptchaDataset
    from imcaption.captcha.image_cache import ensure_cache
    from imcaption.captcha.metrics import recognition_report
    from imcaption.captcha.recognizer import READ_BATCH
    from imcaption.captcha.task import RECOGNIZER_FORMAT, CaptchaTrainConfig
    from imcaption.cli import main as cli
    from imcaption.engine.checkpoint import load_checkpoint
    from imcaption.models import build_recognizer, trained_parameters
    from imcaption.visualize import read_metrics

    made_by = provenance(args.shared)
    run = Path(args.run or f"runs/bench_{name}")
    epochs = args.epochs or CaptchaTrainConfig().loop.epochs
    schedule = ["--minutes", str(args.minutes)] if args.minutes else ["--epochs", str(epochs)]
    train_args = ["captcha", "train", args.data, "--out", str(run), "--model", args.model, *schedule, *options]
    if (run / "last.pt").is_file():
        train_args.append("--resume")
    if cli(train_args) != 0:
        raise SystemExit("training did not finish")

    dataset = CaptchaDataset.open(args.data)
    recognizer = Recognizer.load(run / "best.pt")
    cache = ensure_cache(dataset, recognizer.size)
    val, test = dataset.split("val"), dataset.split("test")
    val_read = read_cached(recognizer, cache, val.indices)
    infer_rate, infer_passes = median_rate(
        lambda: len(read_cached(recognizer, cache, val.indices, progress=False).words)
    )
    report = recognition_report(list(val.indices), val_read.words, dataset.words(val))
    answers = run / "answers.txt"  # written as a user's answer file is: with the model's default search
    cli(["captcha", "predict", str(run / "best.pt"), args.data, "--out", str(answers), "--quiet"])
    given = {line.split(" ")[0]: line.split(" ")[1] for line in answers.read_text().splitlines()}
    test_truth = dataset.words(test)
    test_correct = sum(given.get(f"a{i}") == w for i, w in zip(test.indices, test_truth, strict=True))
    test_greedy = read_cached(recognizer, cache, test.indices)
    test_greedy_correct = sum(r == w for r, w in zip(test_greedy.words, test_truth, strict=True))
    lexicon = run / "lexicon.txt"
    lexicon.write_text("\n".join(sorted(set(dataset.words(dataset.split("train"))))) + "\n")
    trie = recognizer.lexicon(lexicon.read_text().split())
    val_lexicon = read_cached(recognizer, cache, val.indices, lexicon=trie)
    lexicon_report = recognition_report(list(val.indices), val_lexicon.words, dataset.words(val))
    beam_report = None
    searches = {}
    if args.model in ("sat", "par"):
        val_beam = read_cached(recognizer, cache, val.indices, beam=3)
        beam_report = recognition_report(list(val.indices), val_beam.words, dataset.words(val))
        known = {"beam1_open": report.exact_match, "beam1_lexicon": lexicon_report.exact_match,
                 "beam3_open": beam_report.exact_match}  # fmt: skip
        searches = search_table(recognizer, cache, val.indices, dataset.words(val), trie, known)

    curve = read_metrics(run / "metrics.jsonl")
    speeds = [p["train_images_per_s"] for p in curve if "train_images_per_s" in p]
    out = RESULTS / f"captcha_full_{name}.json"
    previous = same_run_results(out, curve)
    best = load_checkpoint(run / "best.pt", RECOGNIZER_FORMAT)
    trained_with = CaptchaTrainConfig.from_dict(best["config"])
    results = {
        "model": args.model,
        "epochs": None if args.minutes else epochs,
        "budget_minutes": args.minutes,
        "options": " ".join(options),
        "augment": trained_with.augment,
        "label_smoothing": trained_with.label_smoothing,
        "precision": best.get("precision", trained_with.loop.precision),
        "parameters": trained_parameters(build_recognizer(recognizer.config)),
        "parameters_counted": "trained, before BatchNorm folding",
        "input_size": f"{recognizer.size.height}x{recognizer.size.width}",
        "val_exact_match": report.exact_match,
        "val_cer": report.cer,
        "val_by_length": {str(k): v for k, v in report.by_length.items()},
        "val_exact_match_lexicon": lexicon_report.exact_match,
        "val_exact_match_beam3": beam_report and beam_report.exact_match,
        "test_exact_match": test_correct / len(test),
        "answer_search": search_name(recognizer.answer_beam),
        "read_precision": recognizer.precision,  # of every reading above: the reading commands' default
        "read_batch": READ_BATCH,
        "test_exact_match_greedy": test_greedy_correct / len(test),
        "train_minutes": round(curve[-1]["wall_minutes"], 2),
        "minutes_to_90": minutes_to(curve, 0.90),
        "minutes_to_95": minutes_to(curve, 0.95),
        "minutes_to_97": minutes_to(curve, 0.97),
        "minutes_to_98": minutes_to(curve, 0.98),
        "minutes_to_99": minutes_to(curve, 0.99),
        "val_subset_exact_match": curve[-1].get("subset_val_exact_match"),
        "val_exact_match_by_search": searches,
        "seed": trained_with.loop.seed,
        "train_images_per_s": round(sum(speeds) / len(speeds), 1),
        "infer_images_per_s": infer_rate,
        "infer_passes_images_per_s": infer_passes,
        "peak_rss_gb": peak_rss_gb(previous),
        **made_by,
        "trained_at_commit": previous.get("trained_at_commit", previous.get("git_commit", made_by["git_commit"])),
        "curve": [
            {
                "step": p["step"],
                "wall_minutes": round(p["wall_minutes"], 2),
                "val_exact_match": p["val_exact_match"],
                "val_images": p.get("val_images", len(val)),  # a budgeted run validates a subset as it goes
            }
            for p in curve
        ],
        "top_confusions": report.summary()["top_confusions"],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out, json.dumps(results, indent=2) + "\n")
    shutil.copy(run / "curves.png", RESULTS / f"curve_{name}.png")
    print(json.dumps({k: v for k, v in results.items() if k not in ("curve", "top_confusions")}, indent=2))


if __name__ == "__main__":
    main()
