"""Data-parallel scaling: the same training, one process against N under torchrun, each process with the same
number of threads, back to back on one machine.

    python -m bench.scaling --processes 1,2 --steps 300      # -> bench/results/scaling_<cores>cores.json

Each configuration trains the default recognizer from scratch for --steps steps of the same global batch
(runs/scaling_<N>/), validating once at the end on --val-limit images; images/s is the loop's training
throughput (validation excluded). Efficiency is images/s with N processes over N times images/s with one.
Run it on an otherwise idle machine with at least N x --threads cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file, not with -m: make `bench` importable all the same
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loopback import free_port
from imcaption.files import write_text_atomically

RESULTS = Path(__file__).parent / "results"


def run_training(processes: int, args: argparse.Namespace) -> dict:
    run = Path(f"runs/scaling_{processes}")
    shutil.rmtree(run, ignore_errors=True)
    train = ["-m", "imcaption", "captcha", "train", args.data, "--out", str(run), "--max-steps", str(args.steps),
             "--eval-every", str(args.steps), "--val-limit", str(args.val_limit), "--threads", str(args.threads),
             "--batch-size", str(args.batch_size), "--quiet"]  # fmt: skip
    launcher = ["-m", "torch.distributed.run", "--nproc-per-node", str(processes), "--master-addr", "127.0.0.1",
                "--master-port", str(free_port())]  # fmt: skip
    command = [sys.executable, *(launcher if processes > 1 else []), *train]
    start = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    return {
        "processes": processes,
        "threads_per_process": args.threads,
        "steps": record["step"],
        "train_images_per_s": round(record["train_images_per_s"], 1),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "val_exact_match": record["val_exact_match"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", default="1,2", help="comma-separated process counts")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch")
    parser.add_argument("--val-limit", type=int, default=1000)
    parser.add_argument("--data", default="data/words_captcha")
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    args = parser.parse_args()

    from bench.provenance import provenance

    made_by = provenance(args.shared)
    rows = [run_training(int(n), args) for n in args.processes.split(",")]
    single = next((r for r in rows if r["processes"] == 1), None)
    for row in rows:
        if single:
            row["efficiency"] = round(row["train_images_per_s"] / (row["processes"] * single["train_images_per_s"]), 3)
    result = {"rows": rows, "global_batch": args.batch_size, **made_by}
    out = RESULTS / f"scaling_{os.cpu_count()}cores.json"
    write_text_atomically(out, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
