"""Recipe probes at equal wall time, one change at a time, recorded in bench/results/captcha_probes.json.

    python -m bench.captcha_probe NAME --minutes M [--run RUN_DIR] -- TRAIN_OPTIONS...
    python -m bench.captcha_probe sat_15 --minutes 15
    python -m bench.captcha_probe par_15 --minutes 15 -- --model par

The protocol: `imcaption captcha train data/words_captcha --minutes M TRAIN_OPTIONS` on the full training set, the
same fixed validation subset during training (2,000 validation images: a seeded random sample since imcaption 0.3,
the first 2,000 before), the whole 20,000-image
validation split at the end, an idle machine (`--shared` records that it was not). An interrupted probe resumes
with the time it had left; a finished one is only read again. The row holds the options, the full validation
exact match and CER, the subset curve, minutes to 90 % on that curve, steps, training images/s, parameters and
peak RSS. Probes never touch the test split.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file, not with -m: make `bench` importable all the same
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imcaption.files import write_text_atomically

RESULTS = Path(__file__).parent / "results" / "captcha_probes.json"


def probe_row(run: Path) -> dict:
    """What a finished budgeted run says about its recipe."""
    from bench.captcha_full import minutes_to
    from imcaption.captcha.task import RECOGNIZER_FORMAT, CaptchaTrainConfig
    from imcaption.engine.checkpoint import load_checkpoint
    from imcaption.models import RecognizerConfig, build_recognizer, trained_parameters
    from imcaption.visualize import read_metrics

    curve = read_metrics(run / "metrics.jsonl")
    last = curve[-1]
    saved = load_checkpoint(run / "last.pt", RECOGNIZER_FORMAT)
    config = CaptchaTrainConfig.from_dict(saved["config"])
    during = curve[:-1]  # the subset validations; the last record is the whole split
    speeds = [p["train_images_per_s"] for p in curve if "train_images_per_s" in p]
    return {
        "model": config.model,
        "budget_minutes": config.loop.minutes,
        "parameters": trained_parameters(build_recognizer(RecognizerConfig.from_dict(saved["model_config"]))),
        "input_size": config.input_size.tag,
        "precision": saved.get("precision", config.loop.precision),
        "steps": last["step"],
        "val_exact_match": last["val_exact_match"],
        "val_cer": round(last["val_cer"], 5),
        "val_images": last["val_images"],
        "val_subset_exact_match": last["subset_val_exact_match"],
        "minutes_to_90_subset": minutes_to(during, 0.90),
        "minutes_to_95_subset": minutes_to(during, 0.95),
        "seed": config.loop.seed,
        "batch_size": config.loop.batch_size,
        "train_minutes": round(last["wall_minutes"], 2),
        "train_images_per_s": round(sum(speeds) / len(speeds), 1),
        "curve_subset": [
            {"step": p["step"], "wall_minutes": round(p["wall_minutes"], 2), "val_exact_match": p["val_exact_match"]}
            for p in during
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name")
    parser.add_argument("--minutes", type=float, required=True, help="the training budget")
    parser.add_argument("--data", default="data/words_captcha")
    parser.add_argument("--run", default=None, help="run folder (default runs/probe_<name>)")
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args, options = parser.parse_args(argv[:split]), argv[split + 1 :]

    from bench.provenance import provenance
    from imcaption.cli import main as cli

    made_by = provenance(args.shared)
    run = Path(args.run or f"runs/probe_{args.name}")
    command = ["captcha", "train", args.data, "--out", str(run), "--quiet", "--minutes", str(args.minutes), *options]
    if (run / "last.pt").is_file():
        command.append("--resume")
    if cli(command) != 0:
        raise SystemExit("training did not finish")
    probes = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    probes[args.name] = {
        **made_by,
        "options": " ".join(options),
        **probe_row(run),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(RESULTS, json.dumps(probes, indent=2) + "\n")
    print(args.name, json.dumps({k: v for k, v in probes[args.name].items() if k != "curve_subset"}, indent=2))


if __name__ == "__main__":
    main()
