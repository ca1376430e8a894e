"""Short recognizer trainings that compare one change at a time, recorded in bench/results/captcha_probes.json.

    python -m bench.captcha_probe NAME [--run RUN_DIR] -- TRAIN_OPTIONS...
    python -m bench.captcha_probe color -- --epochs 1 --augment color --val-limit 4000

Trains `imcaption captcha train data/words_captcha --out RUN_DIR TRAIN_OPTIONS` (resuming a run that was interrupted,
or only reading one that finished), then stores the options with the final validation exact match, CER,
wall minutes and training images/s under NAME. Probes validate on the first N validation images (--val-limit),
never on the test split. Wall times are only comparable between probes run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imcaption.files import write_text_atomically

RESULTS = Path(__file__).parent / "results" / "captcha_probes.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name")
    parser.add_argument("--data", default="data/words_captcha")
    parser.add_argument("--run", default=None, help="run folder (default runs/probe_<name>)")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args, options = parser.parse_args(argv[:split]), argv[split + 1 :]

    from bench.provenance import provenance
    from imcaption.cli import main as cli

    made_by = provenance(cores_shared=False)
    from imcaption.visualize import read_metrics

    run = Path(args.run or f"runs/probe_{args.name}")
    command = ["captcha", "train", args.data, "--out", str(run), "--quiet", *options]
    if (run / "last.pt").is_file():
        command.append("--resume")
    if cli(command) != 0:
        raise SystemExit("training did not finish")
    last = read_metrics(run / "metrics.jsonl")[-1]
    probes = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    probes[args.name] = {
        **made_by,
        "options": " ".join(options),
        "steps": last["step"],
        "val_exact_match": last["val_exact_match"],
        "val_cer": round(last["val_cer"], 4),
        "train_minutes": round(last["wall_minutes"], 2),
        "train_images_per_s": round(last.get("train_images_per_s", 0.0), 1),  # absent after a redone validation
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(RESULTS, json.dumps(probes, indent=2) + "\n")
    print(args.name, json.dumps(probes[args.name]))


if __name__ == "__main__":
    main()
