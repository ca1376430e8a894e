"""How often a finished 2-process training run exits cleanly under torchrun (gloo on the CPU).

    python -m bench.ddp_exit --runs 20 --name fixed      # -> bench/results/ddp_exit_<name>.json

Each run is the distributed tests' small recipe (sat at 32x64, 40 steps of 16 images on 320 training images,
validation on 64) on a small generated set: 20 steps in one process, then resumed to the end by 2 processes
under torchrun, which is where tests/test_distributed.py saw a finished run abort at exit. The result counts the
exit codes of the 2-process part and keeps the last lines of stderr of each run that failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # run as a file, not with -m: make `bench` importable all the same
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.loopback import free_port
from imcaption.files import write_text_atomically

RESULTS = Path(__file__).parent / "results"
# 40 steps of a global batch of 16 (two epochs of 320 images), validated every 10 steps on 64 images: small enough
# for a test (tests/test_distributed.py trains with it too).
RECIPE = ["--model", "sat", "--height", "32", "--width", "64", "--batch-size", "16", "--epochs", "2",
          "--train-limit", "320", "--val-limit", "64", "--eval-every", "10", "--warmup-steps", "10",
          "--threads", "1", "--precision", "fp32", "--quiet"]  # fmt: skip


def train(data: Path, run: Path, processes: int, *extra: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`imcaption captcha train` with RECIPE, under torchrun where `processes` > 1, one thread per process."""
    command = [sys.executable, "-m", "imcaption", "captcha", "train", str(data), "--out", str(run), *RECIPE, *extra]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes),
                    "--master-addr", "127.0.0.1", "--master-port", str(free_port())]  # fmt: skip
        command = [*launcher, *command[1:]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--name", required=True)
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    args = parser.parse_args()

    from bench.provenance import provenance

    made_by = provenance(args.shared)
    exit_codes: list[int] = []
    failures = []
    with tempfile.TemporaryDirectory() as temp:
        data = Path(temp) / "words_captcha"
        subprocess.run([sys.executable, "-m", "imcaption", "captcha", "generate", str(data), "--count", "600",
                        "--quiet"], check=True)  # fmt: skip
        for index in range(args.runs):
            run = Path(temp) / f"run_{index}"
            if train(data, run, 1, "--max-steps", "20").returncode != 0:
                raise SystemExit(f"the one-process part of run {index} failed")
            done = train(data, run, 2, "--resume")
            exit_codes.append(done.returncode)
            finished = "done: best validation" in done.stdout
            if done.returncode != 0:
                failures.append({"run": index, "training_finished": finished, "stderr": done.stderr[-600:]})
            print(f"run {index + 1}/{args.runs}: exit {done.returncode}", flush=True)
    result = {
        "runs": args.runs,
        "clean_exits": exit_codes.count(0),
        "exit_codes": dict(Counter(str(code) for code in exit_codes)),
        "failures": failures,
        **made_by,
    }
    write_text_atomically(RESULTS / f"ddp_exit_{args.name}.json", json.dumps(result, indent=2) + "\n")
    print(json.dumps({key: value for key, value in result.items() if key != "failures"}, indent=2))


if __name__ == "__main__":
    main()
