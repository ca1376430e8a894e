"""`imcaption captcha assignment` (what `make run` runs) killed with SIGKILL in each stage, then rerun, ends
exactly where an uninterrupted run ends: same images, same weights, same answer file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from imcaption.captcha.image_cache import CACHE_DIR
from imcaption.captcha.task import RECOGNIZER_FORMAT
from imcaption.engine.checkpoint import load_checkpoint

# 420 images (300 train, 60 val, 60 test), 32 x 64 thumbnails, two epochs of batches of 32, one thread so that
# the arithmetic of every step is reproducible.
TRAIN = ["--epochs", "2", "--batch-size", "32", "--height", "32", "--width", "64", "--eval-every", "4",
         "--threads", "1", "--augment", "none"]  # fmt: skip


def _assignment(data: Path, run: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "imcaption", "captcha", "assignment", str(data), "--out", str(run),
               "--count", "420", "--quiet", *TRAIN]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # A session of its own, so that the kill reaches the generator's worker processes too, as a closed terminal
    # or a lost machine would.
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env, start_new_session=True)


def _kill_when(process: subprocess.Popen, ready: Callable[[], bool], timeout: float = 120) -> bool:
    """SIGKILL the process group as soon as `ready()`; False when the process ended first."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if ready():
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.005)
    process.wait()
    return False


def _end_state(data: Path, run: Path) -> tuple[dict[str, bytes], dict[str, torch.Tensor], bytes]:
    images = {p.name: p.read_bytes() for p in data.glob("a*.png")}
    return images, load_checkpoint(run / "last.pt", RECOGNIZER_FORMAT)["model"], (run / "answers.txt").read_bytes()


def test_make_run_killed_in_every_stage_and_rerun_ends_as_an_uninterrupted_run(tmp_path: Path) -> None:
    straight_data, straight_run = tmp_path / "straight" / "data", tmp_path / "straight" / "run"
    assert _assignment(straight_data, straight_run).wait() == 0

    data, run = tmp_path / "killed" / "data", tmp_path / "killed" / "run"
    stages = {
        "generation": lambda: len(list(data.glob("a*.png"))) >= 50,
        "cache": lambda: any((data / CACHE_DIR).glob("*.partial")),
        "training": lambda: (run / "metrics.jsonl").is_file() and bool((run / "metrics.jsonl").read_text()),
    }
    killed = [stage for stage, ready in stages.items() if _kill_when(_assignment(data, run), ready)]
    assert "generation" in killed and "training" in killed  # the cache build can be too quick to catch
    assert _assignment(data, run).wait() == 0  # the same command again finishes the job

    images, weights, answers = _end_state(data, run)
    expected_images, expected_weights, expected_answers = _end_state(straight_data, straight_run)
    assert images == expected_images
    assert weights.keys() == expected_weights.keys()
    assert all(torch.equal(value, expected_weights[name]) for name, value in weights.items())
    assert answers == expected_answers
