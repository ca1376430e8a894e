"""The assignment's answer file for a finished run, as `imcaption captcha assignment` writes it.

    python -m bench.captcha_answers RUN [--data data/words_captcha] [--name NAME]

Runs the assignment on RUN, whose training is finished (nothing is trained again): validation read with each answer
search (open vocabulary; held to the training labels' words with beams 3 and 5), the best on validation writes the
test answers, which are scored against the generator's test_labels.txt. Writes
bench/results/captcha_answers_<name>.json: every search's validation exact match, the search chosen, the open
vocabulary's figure beside it, and the answer file's test exact match. The test split is read once, with the
search validation chose.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file, not with -m: make `bench` importable all the same
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imcaption.files import write_text_atomically

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--data", default="data/words_captcha")
    parser.add_argument("--name", default=None, help="results name (default: the run folder's name)")
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    args = parser.parse_args()

    from bench.provenance import provenance
    from imcaption.captcha.pipeline import run_assignment

    made_by = provenance(args.shared)
    run = Path(args.run)
    if not (run / "last.pt").is_file():
        raise SystemExit(f"{run}: no finished run (last.pt) to write answers from")
    result = run_assignment(args.data, run, progress=False)
    report = json.loads((run / "val_report.json").read_text())
    out = {
        **made_by,
        "run": str(run),
        "answer_search": result.answer_search,
        "val_exact_match": result.val_exact_match,
        "val_exact_match_open": result.val_exact_match_open,
        "val_exact_match_by_search": report["exact_match_by_search"],
        "test_exact_match": result.test_exact_match,
        "test_images": sum(1 for _ in result.answers.open()),
    }
    name = args.name or run.name
    write_text_atomically(RESULTS / f"captcha_answers_{name}.json", json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
