"""Data-parallel training under torchrun with gloo on the CPU: two processes follow one process's loss curve with
the same global batch, a run resumes at another world size, and a dying rank ends the job with an error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.ddp_exit import RECIPE
from bench.ddp_exit import train as run_recipe
from bench.loopback import free_port
from imcaption.captcha.task import RECOGNIZER_FORMAT
from imcaption.engine.checkpoint import load_checkpoint
from imcaption.engine.distributed import World

# Each rank normalizes its BatchNorm layers over its own 8 images rather than all 16, and sums in another order:
# the curves agree to this much, not bit for bit.
LOSS_TOLERANCE = 0.05


def train(data: Path, run: Path, processes: int, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """bench.ddp_exit's small recipe (40 steps of 16 images), which must end with exit code 0."""
    done = run_recipe(data, run, processes, *extra, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def one_process(easy_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("one") / "run"
    train(easy_dataset, run, 1)
    return run


def assert_same_curve(run: Path, reference: Path) -> None:
    got, expected = records(run), records(reference)
    assert [r["step"] for r in got] == [r["step"] for r in expected] == [10, 20, 30, 40]
    for a, b in zip(got, expected, strict=True):
        assert a["lr"] == pytest.approx(b["lr"], rel=1e-12)  # the same schedule
        assert abs(a["train_loss"] - b["train_loss"]) < LOSS_TOLERANCE, (a, b)


def test_two_processes_follow_one_process_with_the_same_global_batch(
    one_process: Path, easy_dataset: Path, tmp_path: Path
) -> None:
    done = train(easy_dataset, tmp_path / "run", 2)
    assert "x 2 processes (8 images each per step)" in done.stdout
    assert done.stdout.count("done: best validation") == 1  # rank 0 alone reports
    assert_same_curve(tmp_path / "run", one_process)
    # Validation is sharded and gathered: all 64 images, every time.
    assert all(r["val_images"] == 64 for r in records(tmp_path / "run"))
    final = load_checkpoint(tmp_path / "run" / "last.pt", RECOGNIZER_FORMAT)
    assert final["run_state"]["step"] == 40


@pytest.mark.parametrize(("before", "after"), [(2, 1), (1, 2)])
def test_a_run_resumes_at_another_world_size(
    before: int, after: int, one_process: Path, easy_dataset: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    train(easy_dataset, run, before, "--max-steps", "20")
    assert load_checkpoint(run / "last.pt", RECOGNIZER_FORMAT)["run_state"]["step"] == 20
    done = train(easy_dataset, run, after, "--resume", "--max-steps", "0")
    assert "resuming" in done.stdout
    assert_same_curve(run, one_process)  # the same steps, schedule and data order as one uninterrupted process


def test_a_time_budget_ends_at_the_same_step_on_every_rank(easy_dataset: Path, tmp_path: Path) -> None:
    """Each rank has its own clock; they agree on rank 0's, so they stop, validate and save together."""
    done = train(easy_dataset, tmp_path / "run", 2, "--minutes", "0.25", "--epochs", "1000", "--eval-every", "0")
    assert done.stdout.count("done: best validation") == 1
    final = records(tmp_path / "run")[-1]
    assert final["val_images"] == 64 and final["wall_minutes"] == pytest.approx(0.25, abs=0.1)
    assert final["lr"] < 0.05 * 3e-3  # near the floor (2 % of the peak): the cosine followed the agreed clock
    assert load_checkpoint(tmp_path / "run" / "last.pt", RECOGNIZER_FORMAT)["run_state"]["step"] == final["step"]


def test_a_rank_that_dies_ends_the_job_with_an_error(easy_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr",
               "127.0.0.1", "--master-port", str(free_port()), "-m", "imcaption", "captcha", "train",
               str(easy_dataset), "--out", str(run), *RECIPE, "--epochs", "200"]  # fmt: skip
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not (run / "metrics.jsonl").is_file():  # both ranks are training
            assert job.poll() is None and time.monotonic() < deadline, "the job did not start training"
            time.sleep(0.5)
        workers = subprocess.run(["pgrep", "-P", str(job.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) == 2
        os.kill(int(workers[1]), signal.SIGKILL)
        _, stderr = job.communicate(timeout=120)  # no hang: the launcher stops the survivor
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode != 0
    assert "SIGKILL" in stderr or "Signal 9" in stderr, stderr[-2000:]


def test_world_shards_cover_every_row_once() -> None:
    for count in (0, 1, 7, 64):
        for size in (1, 2, 3, 8):
            rows = [i for rank in range(size) for i in range(count)[World(rank, size).shard(count)]]
            assert rows == list(range(count))


def test_the_shares_of_a_step_make_up_its_global_batch(easy_dataset: Path) -> None:
    """What each rank reads, put together in rank order, is exactly the one-process batch (augmentation included)."""
    import torch

    from imcaption.captcha.task import CaptchaTask, CaptchaTrainConfig
    from imcaption.engine.config import with_options

    config = with_options(CaptchaTrainConfig(), {"height": 32, "width": 64, "batch_size": 12, "train_limit": 120})
    whole_task, shared_task = CaptchaTask(easy_dataset, config, progress=False), CaptchaTask(easy_dataset, config)
    for step in (0, 7):
        images, targets = whole_task.batch(step)
        state = shared_task.augment_rng.get_state()
        parts = []
        for rank in range(3):
            shared_task.augment_rng.set_state(state)  # every rank starts the step with the same generator
            parts.append(shared_task.batch(step, World(rank, 3).shard(12)))
        assert torch.allclose(torch.cat([p[0] for p in parts]), images, atol=1e-4)
        assert torch.equal(torch.cat([p[1] for p in parts]), targets)
