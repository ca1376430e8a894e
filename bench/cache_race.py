"""Two `imcaption captcha cache` processes on one dataset at once, many times: every pair must exit 0 and leave
the bytes a single build makes.

    python -m bench.cache_race [--rounds 20] [--count 700] [--data runs/cache_race/set]

Generates a small set once, builds its cache alone for the reference bytes, then for each round deletes the
cache and starts two builders a moment apart. Writes bench/results/cache_race.json (rounds, exit codes, corrupt
caches, leftover temporary files, which builder waited).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file, not with -m: make `bench` importable all the same
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.provenance import provenance
from imcaption.files import write_text_atomically

RESULTS = Path(__file__).parent / "results" / "cache_race.json"
SIZE = ("--height", "32", "--width", "64")


def builder(root: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "imcaption", "captcha", "cache", str(root), *SIZE, "--workers", "1", "--quiet"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def race(root: Path, reference: bytes, data_path: Path, gap_s: float) -> dict:
    """One round: two builders `gap_s` apart; their exit codes, whether the cache is the reference's bytes."""
    shutil.rmtree(data_path.parent, ignore_errors=True)
    first = builder(root)
    time.sleep(gap_s)
    second = builder(root)
    codes = [first.wait(timeout=600), second.wait(timeout=600)]
    errors = [first.stderr.read(), second.stderr.read()]
    return {
        "exit_codes": codes,
        "correct": data_path.is_file() and data_path.read_bytes() == reference,
        "leftover_temporary_files": len(list(data_path.parent.glob("*.partial"))),
        "waited": ["waiting for process" in text for text in errors],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--count", type=int, default=700)
    parser.add_argument("--data", default="runs/cache_race/set")
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    args = parser.parse_args()
    made_by = provenance(args.shared)

    from imcaption.captcha.dataset import CaptchaDataset
    from imcaption.captcha.generator import generate_dataset
    from imcaption.captcha.image_cache import build_cache, cache_paths
    from imcaption.captcha.vocabulary import default_vocabulary
    from imcaption.images import ImageSize

    root = Path(args.data)
    generate_dataset(root, default_vocabulary(), count=args.count, seed=5, progress=False)
    size = ImageSize(int(SIZE[1]), int(SIZE[3]))
    data_path, _ = cache_paths(root, size)
    shutil.rmtree(data_path.parent, ignore_errors=True)
    reference = build_cache(CaptchaDataset.open(root), size, workers=1, progress=False).data_path.read_bytes()
    # Gaps from 0 to about a build's length: the second builder arrives before, during and near the end of the first.
    rounds = [race(root, reference, data_path, gap_s=0.05 * n) for n in range(args.rounds)]
    result = {
        **made_by,
        "images": args.count,
        "rounds": len(rounds),
        "all_exit_0": all(r["exit_codes"] == [0, 0] for r in rounds),
        "corrupt_caches": sum(not r["correct"] for r in rounds),
        "leftover_temporary_files": sum(r["leftover_temporary_files"] for r in rounds),
        "rounds_where_one_waited": sum(any(r["waited"]) for r in rounds),
        "per_round": rounds,
    }
    write_text_atomically(RESULTS, json.dumps(result, indent=1) + "\n")
    print(f"wrote {RESULTS}: {result['corrupt_caches']} corrupt caches in {len(rounds)} rounds, "
          f"all exit 0: {result['all_exit_0']}")  # fmt: skip


if __name__ == "__main__":
    main()
