"""The training engine, tested once for both tasks (with the captcha task as the real workload): exact resume
after a signal at any step or during validation, refused option changes on resume, the SIGTERM exit code,
checkpoint rotation, the schedule, safe loading and progress output for logs."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from imcaption.captcha.task import RECOGNIZER_FORMAT, CaptchaTask, CaptchaTrainConfig
from imcaption.engine.averaging import WeightAverage
from imcaption.engine.checkpoint import CheckpointError, load_checkpoint
from imcaption.engine.config import with_options
from imcaption.engine.interrupt import Interrupted
from imcaption.engine.loop import Trainer
from imcaption.engine.precision import resolve_precision
from imcaption.engine.progress import progress_bar
from imcaption.engine.run import open_run
from imcaption.engine.schedule import FLOOR, warmup_cosine, warmup_cosine_budget
from imcaption.images import ImageSize

# 256 training images in batches of 32: 8 steps an epoch, 16 in all; validation every 4 steps on 32 images.
OPTIONS = dict(epochs=2, batch_size=32, height=32, width=64, train_limit=256, val_limit=32, eval_every=4, keep=2)


# The signal tests send SIGINT: every test here runs with its usual meaning restored (conftest.py).
pytestmark = pytest.mark.usefixtures("sigint_handled")



def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "last.pt", RECOGNIZER_FORMAT)["model"]


def _validated_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def _interrupt_when(trainer: Trainer, method: str, step: int) -> None:
    """Send this process a real SIGINT while the task runs `method` at `step` (the middle of that work)."""
    original = getattr(trainer.task, method)

    def wrapped(*args):
        if trainer.state.step == step:
            signal.raise_signal(signal.SIGINT)
        return original(*args)

    setattr(trainer.task, method, wrapped)


@pytest.fixture(scope="module")
def straight_run(easy_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("straight")
    open_run(CaptchaTask, easy_dataset, run, OPTIONS, progress=False).run()
    torch.set_num_threads(before)
    return run


@pytest.mark.parametrize("stop_step", [random.Random().randrange(0, 15), 3, 7])
def test_interrupted_at_any_step_and_resumed_equals_an_uninterrupted_run(
    stop_step: int, straight_run: Path, easy_dataset: Path, tmp_path: Path, one_thread: None
) -> None:
    trainer = open_run(CaptchaTask, easy_dataset, tmp_path, OPTIONS, progress=False)
    _interrupt_when(trainer, "batch", stop_step)
    with pytest.raises(Interrupted) as stopped:
        trainer.run()
    assert stopped.value.exit_code == 130
    # The step under way when the signal came is finished, never half applied.
    assert load_checkpoint(tmp_path / "last.pt", RECOGNIZER_FORMAT)["run_state"]["step"] == stop_step + 1

    resumed = open_run(CaptchaTask, easy_dataset, tmp_path, {}, resume=True, progress=False)
    assert resumed.state.step == stop_step + 1
    resumed.run()
    expected = _weights(straight_run)
    for name, value in _weights(tmp_path).items():
        assert torch.equal(value, expected[name]), f"{name} differs after a stop at step {stop_step}"
    assert _validated_steps(tmp_path) == _validated_steps(straight_run) == [4, 8, 12, 16]
    assert sorted(p.name for p in tmp_path.glob("step-*.pt")) == ["step-0000012.pt", "step-0000016.pt"]  # --keep 2


def test_a_signal_during_validation_redoes_that_validation_on_resume(
    straight_run: Path, easy_dataset: Path, tmp_path: Path, one_thread: None
) -> None:
    trainer = open_run(CaptchaTask, easy_dataset, tmp_path, OPTIONS, progress=False)
    _interrupt_when(trainer, "validate", 8)
    with pytest.raises(Interrupted):
        trainer.run()
    saved = load_checkpoint(tmp_path / "last.pt", RECOGNIZER_FORMAT)["run_state"]
    assert (saved["step"], saved["validated_step"]) == (8, 4)
    resumed = open_run(CaptchaTask, easy_dataset, tmp_path, {}, resume=True, progress=False)
    resumed.run()
    assert _validated_steps(tmp_path) == [4, 8, 12, 16]  # step 8 evaluated once, after the resume
    best = load_checkpoint(tmp_path / "best.pt", RECOGNIZER_FORMAT)["model"]
    straight_best = load_checkpoint(straight_run / "best.pt", RECOGNIZER_FORMAT)["model"]
    assert all(torch.equal(best[name], straight_best[name]) for name in best)


def test_resume_keeps_the_saved_configuration_and_refuses_changes(easy_dataset: Path, tmp_path: Path) -> None:
    open_run(CaptchaTask, easy_dataset, tmp_path, {**OPTIONS, "max_steps": 2}, progress=False).run()
    with pytest.raises(ValueError, match=r"--lr 0.1 \(the run has 0.003\).*--augment color"):
        open_run(CaptchaTask, easy_dataset, tmp_path, {"lr": 0.1, "augment": "color"}, resume=True, progress=False)
    # What moves no step of the schedule may change: where to stop, threads, checkpoints kept.
    resumed = open_run(CaptchaTask, easy_dataset, tmp_path, {"max_steps": 4, "keep": 1}, resume=True, progress=False)
    assert resumed.task.config.loop.lr == 0.003 and resumed.stop_step == 4 and resumed.loop.keep == 1
    with pytest.raises(ValueError, match="already holds a run"):
        open_run(CaptchaTask, easy_dataset, tmp_path, OPTIONS, progress=False)


def test_sigterm_saves_and_exits_143(easy_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    command = [sys.executable, "-m", "imcaption", "captcha", "train", str(easy_dataset), "--out", str(run),
               "--height", "32", "--width", "64", "--batch-size", "16", "--epochs", "50", "--eval-every", "5",
               "--val-limit", "16", "--threads", "1"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not (run / "metrics.jsonl").is_file() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 143, output
    assert "SIGTERM" in output and "Continue with --resume" in output
    assert load_checkpoint(run / "last.pt", RECOGNIZER_FORMAT)["run_state"]["step"] >= 5


def test_schedule_warms_up_then_decays_to_the_floor() -> None:
    assert warmup_cosine(0, 10, 100) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 100) == pytest.approx(1.0)
    assert warmup_cosine(10, 10, 100) == pytest.approx(1.0)
    assert warmup_cosine(55, 10, 100) == pytest.approx(0.51)  # half way through the decay
    assert warmup_cosine(100, 10, 100) == pytest.approx(0.02)
    assert warmup_cosine(500, 10, 100) == pytest.approx(0.02)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_pickle_is_refused_without_running_its_payload(tmp_path: Path) -> None:
    marker = tmp_path / "payload_ran"
    evil = tmp_path / "evil.pt"
    torch.save({"format": RECOGNIZER_FORMAT, "format_version": 2, "model": _Payload(marker)}, evil)
    with pytest.raises(CheckpointError, match="safely"):
        load_checkpoint(evil, RECOGNIZER_FORMAT)
    from imcaption.api import Recognizer
    from imcaption.cli import main

    with pytest.raises(CheckpointError):
        Recognizer.load(evil)
    assert main(["captcha", "read", str(evil), str(tmp_path / "x.png")]) == 2
    assert not marker.exists()


def test_progress_in_a_log_writes_at_most_one_line_every_30_seconds(capsys: pytest.CaptureFixture) -> None:
    with progress_bar(total=100_000, desc="work") as bar:  # captured stderr is not a terminal
        assert bar.mininterval == 30
        for _ in range(100_000):
            bar.update(1)
    lines = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines() if line.strip()]
    assert len(lines) <= 3  # the first draw, the last, and at most one in between


def test_a_killed_training_resumes_to_the_same_weights(
    straight_run: Path, easy_dataset: Path, tmp_path: Path, one_thread: None
) -> None:
    options = [f"--{name.replace('_', '-')}={value}" for name, value in OPTIONS.items()]
    command = [sys.executable, "-m", "imcaption", "captcha", "train", str(easy_dataset), "--out", str(tmp_path),
               "--threads", "1", "--quiet", *options]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    log = tmp_path / "metrics.jsonl"
    while (not log.is_file() or not log.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)  # no handler runs: whatever was on disk is all there is
    process.wait()
    assert process.returncode == -signal.SIGKILL
    # Resumed as a user would: with --resume where a checkpoint was saved, anew where it was killed before one.
    saved = (tmp_path / "last.pt").is_file()
    resumed = open_run(CaptchaTask, easy_dataset, tmp_path, OPTIONS, resume=saved, progress=False)
    assert resumed.state.step in (0, 4, 8)  # 0: killed before the first checkpoint was saved
    resumed.run()
    expected = _weights(straight_run)
    assert all(torch.equal(value, expected[name]) for name, value in _weights(tmp_path).items())
    assert _validated_steps(tmp_path) == [4, 8, 12, 16]


# -- time-budgeted runs (--minutes) ------------------------------------------------------------------------------
BUDGET = dict(OPTIONS, minutes=0.05, eval_every=0, val_subset=8, warmup_steps=2)  # 3 s, validated on 8 images


def test_budget_schedule_reaches_its_floor_exactly_when_the_time_is_up() -> None:
    assert warmup_cosine_budget(0, 4, 0.0) == 0.25  # warmup counts steps
    assert warmup_cosine_budget(10, 4, 0.0) == pytest.approx(1.0)
    assert warmup_cosine_budget(10, 4, 0.5) == pytest.approx((1 + FLOOR) / 2)
    assert warmup_cosine_budget(10, 4, 1.0) == pytest.approx(FLOOR)
    assert warmup_cosine_budget(10, 4, 1.7) == pytest.approx(FLOOR)  # a run past its budget stays at the floor


def test_a_budgeted_run_stops_at_its_budget_validating_a_subset_then_everything(
    easy_dataset: Path, tmp_path: Path
) -> None:
    trainer = open_run(CaptchaTask, easy_dataset, tmp_path, BUDGET, progress=False)
    state = trainer.run()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # Stopped at the budget (3 s), not after the 16 steps of two epochs, plus one last validation of 32 images.
    assert 3.0 <= state.wall_seconds < 3.0 + 2.0
    assert records[-1]["step"] == state.step and trainer.is_done()
    assert records[-1]["val_images"] == 32 and records[-1]["subset_val_images"] == 8
    assert all(r["val_images"] == 8 for r in records[:-1]) and len(records) >= 3  # the cadence: 12 per budget
    assert records[-1]["lr"] < 0.003 * 0.1  # the cosine was near its floor at the last step
    assert "subset_val_exact_match" not in records[0]


def test_a_budgeted_run_resumes_with_the_time_it_had_left(easy_dataset: Path, tmp_path: Path) -> None:
    trainer = open_run(CaptchaTask, easy_dataset, tmp_path, BUDGET, progress=False)
    _interrupt_when(trainer, "batch", 5)
    with pytest.raises(Interrupted):
        trainer.run()
    saved = load_checkpoint(tmp_path / "last.pt", RECOGNIZER_FORMAT)["run_state"]
    assert saved["step"] == 6 and 0 < saved["wall_seconds"] < 3.0
    resumed = open_run(CaptchaTask, easy_dataset, tmp_path, {}, resume=True, progress=False)
    assert resumed.budget_spent() == pytest.approx(saved["wall_seconds"] / 3.0, abs=0.02)
    state = resumed.run()
    assert state.step > 6 and 3.0 <= state.wall_seconds < 5.0  # both sessions together fill the budget once
    with pytest.raises(ValueError, match="--minutes 1.0"):
        open_run(CaptchaTask, easy_dataset, tmp_path, {"minutes": 1.0}, resume=True, progress=False)


# -- mixed precision (--precision) -------------------------------------------------------------------------------
@pytest.mark.parametrize(("amx", "avx512_bf16", "expected"),
                         [(True, False, "bf16"), (False, True, "bf16"), (False, False, "fp32")])  # fmt: skip
def test_precision_auto_takes_bf16_exactly_where_the_cpu_has_it(
    amx: bool, avx512_bf16: bool, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == expected
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ValueError, match="fp16.*auto, fp32, bf16"):
        resolve_precision("fp16", cpu)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_steps_run_their_convolutions_in_the_chosen_precision_and_keep_fp32_weights(
    precision: str, easy_dataset: Path, tmp_path: Path
) -> None:
    trainer = open_run(CaptchaTask, easy_dataset, tmp_path, {**OPTIONS, "max_steps": 4, "precision": precision},
                       progress=False)  # fmt: skip
    seen: list[torch.dtype] = []
    first_conv = trainer.task.model.encoder.layers[0][0]
    first_conv.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    trainer.run()
    expected = torch.bfloat16 if precision == "bf16" else torch.float32
    assert seen[:4] == [expected] * 4  # the four training steps
    assert seen[4:] and set(seen[4:]) == {torch.float32}  # validation reads as the saved model will: fp32
    weights = _weights(tmp_path)
    assert {value.dtype for value in weights.values() if value.is_floating_point()} == {torch.float32}


def test_the_input_size_is_the_models_own_unless_given_and_a_run_saves_it_written_out() -> None:
    default = CaptchaTrainConfig()
    assert (default.height, default.width) == (0, 0) and default.input_size == ImageSize(96, 192)
    assert with_options(default, {"model": "crnn"}).input_size == ImageSize(64, 128)  # the peer's own height
    assert with_options(default, {"model": "crnn", "height": 96}).input_size == ImageSize(96, 128)
    # Written out, so a later change of the default cannot change the size of a run being resumed.
    saved = CaptchaTrainConfig.from_dict(json.loads(json.dumps(asdict(default.resolved()))))
    assert (saved.height, saved.width) == (96, 192)


def test_a_run_saved_before_precision_existed_resumes_in_fp32() -> None:
    saved = asdict(CaptchaTrainConfig().resolved())
    del saved["loop"]["precision"]
    assert CaptchaTrainConfig.from_dict(saved).loop.precision == "fp32"  # not today's "auto"
    assert CaptchaTrainConfig.from_dict(asdict(CaptchaTrainConfig())).loop.precision == "auto"


def test_the_main_job_caches_at_the_size_of_the_run_it_resumes(easy_dataset: Path, tmp_path: Path) -> None:
    from imcaption.captcha.pipeline import _training_input_size

    assert _training_input_size(tmp_path, {}) == ImageSize(96, 192)  # a new run: the default
    open_run(CaptchaTask, easy_dataset, tmp_path, {**OPTIONS, "max_steps": 1}, progress=False).run()
    assert _training_input_size(tmp_path, {}) == ImageSize(32, 64)  # the saved run's, not today's default


def test_the_weight_average_warms_up_and_copies_integer_buffers() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    average = WeightAverage(model, decay=0.999)
    with torch.no_grad():
        model[0].weight.fill_(0.0)
    average.update(model)  # the first update copies
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    model[1].num_batches_tracked.fill_(7)
    average.update(model)  # after one update the decay is min(0.999, 2 / 11): the new weights count 9 / 11
    averaged = average.weights()
    assert torch.allclose(averaged["0.weight"], torch.full((2, 2), 9 / 11))
    assert int(averaged["1.num_batches_tracked"]) == 7 and average.updates == 2
    with average.swapped_into(model):
        assert torch.allclose(model[0].weight, torch.full((2, 2), 9 / 11))
    assert torch.equal(model[0].weight, torch.ones(2, 2))
    with pytest.raises(ValueError, match="--ema"):
        WeightAverage(model, decay=1.5)


def test_with_ema_the_average_is_validated_saved_and_resumed_exactly(
    easy_dataset: Path, tmp_path: Path, one_thread: None
) -> None:
    options = {**OPTIONS, "ema": 0.9}
    straight = open_run(CaptchaTask, easy_dataset, tmp_path / "straight", options, progress=False)
    straight.run()
    trainer = open_run(CaptchaTask, easy_dataset, tmp_path / "stopped", options, progress=False)
    _interrupt_when(trainer, "batch", 5)
    with pytest.raises(Interrupted):
        trainer.run()
    open_run(CaptchaTask, easy_dataset, tmp_path / "stopped", {}, resume=True, progress=False).run()
    expected = load_checkpoint(tmp_path / "straight" / "last.pt", RECOGNIZER_FORMAT)
    resumed = load_checkpoint(tmp_path / "stopped" / "last.pt", RECOGNIZER_FORMAT)
    for key in ("model", "trained_model"):
        for name, value in resumed[key].items():
            assert torch.equal(value, expected[key][name]), f"{key}.{name} differs after a resume"
    assert resumed["ema_updates"] == 16
    assert not torch.equal(expected["model"]["output.2.weight"], expected["trained_model"]["output.2.weight"])
    # The validation recorded at the end is that of the average, which is what readers load as "model".
    task = straight.task
    task.model.load_state_dict(expected["model"])
    task.model.eval()
    with torch.no_grad():
        again = task.validate()
    last = json.loads((tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()[-1])
    assert again["val_cer"] == pytest.approx(last["val_cer"], abs=1e-9)
