"""Commands per task: each accepts only its own options, defaults come from the config dataclasses, and the
spellings of imcaption 0.1 point at their replacements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imcaption.captcha.task import CaptchaTrainConfig
from imcaption.captioning.task import CaptionTrainConfig
from imcaption.cli import main


@pytest.mark.parametrize(
    ("command", "foreign"),
    [
        (["captcha", "train", "DATA", "--out", "RUN"], ["--decoder", "sat"]),
        (["captcha", "train", "DATA", "--out", "RUN"], ["--attention-penalty", "1"]),
        (["caption", "train", "DATA", "--out", "RUN"], ["--augment", "shift"]),
        (["caption", "train", "DATA", "--out", "RUN"], ["--label-smoothing", "0.1"]),
        (["caption", "describe", "MODEL", "x.png"], ["--lexicon", "words.txt"]),
    ],
)
def test_options_of_the_other_task_are_refused(
    command: list[str], foreign: list[str], capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, *foreign])
    assert exited.value.code == 2
    assert f"unrecognized arguments: {' '.join(foreign)}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--batch-size", "0", "must be at least 1, got 0"), ("--beam", "-2", "must be at least 1, got -2"),
     ("--batch-size", "many", "expected a whole number, got 'many'")],
)  # fmt: skip
def test_reading_counts_below_one_are_refused_by_name(
    option: str, value: str, message: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["captcha", "evaluate", "MODEL", "DATA", option, value])
    assert exited.value.code == 2
    assert f"argument {option}: {message}" in capsys.readouterr().err


def test_help_shows_each_tasks_own_defaults(capsys: pytest.CaptureFixture) -> None:
    for task, config in (("captcha", CaptchaTrainConfig()), ("caption", CaptionTrainConfig())):
        with pytest.raises(SystemExit):
            main([task, "train", "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert f"passes over the training set (ignored with --minutes) (default: {config.loop.epochs})" in text
        assert f"peak learning rate (AdamW) (default: {config.loop.lr})" in text
    assert CaptchaTrainConfig().loop.epochs != CaptionTrainConfig().loop.epochs


@pytest.mark.parametrize(("old", "new"), [("train", "imcaption captcha train"), ("scenes", "imcaption caption scenes")])
def test_old_spellings_point_to_the_new_commands(old: str, new: str, capsys: pytest.CaptureFixture) -> None:
    assert main([old, "x"]) == 2
    assert f"`imcaption {old}` is now `{new}" in capsys.readouterr().err


def test_the_old_caption_command_points_to_its_new_name(capsys: pytest.CaptureFixture) -> None:
    assert main(["caption", "runs/x/best.pt", "photo.jpg"]) == 2
    assert "is now `imcaption caption describe MODEL IMAGE`" in capsys.readouterr().err


def test_resume_with_a_schedule_changing_flag_is_refused(
    easy_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    base = ["captcha", "train", str(easy_dataset), "--out", str(tmp_path), "--height", "32", "--width", "64",
            "--max-steps", "1", "--val-limit", "8", "--quiet"]  # fmt: skip
    assert main(base) == 0
    assert main([*base, "--resume", "--epochs", "3"]) == 2
    assert "cannot change --epochs 3 (the run has 10)" in capsys.readouterr().err
    (tmp_path / "metrics.jsonl").open("a").write('{"step": 1, "val_exa')  # a line torn by a kill
    assert main([*base, "--resume", "--max-steps", "2"]) == 0  # where to stop is not the schedule
    assert "resuming" in capsys.readouterr().out
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]


def test_the_main_job_trains_for_an_hour_unless_told_otherwise(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from imcaption.cli.captcha import assignment_options

    assert assignment_options({}, tmp_path)["minutes"] == 60.0
    assert assignment_options({"minutes": 15.0}, tmp_path)["minutes"] == 15.0  # the quick mode
    assert assignment_options({"epochs": 2}, tmp_path) == {"epochs": 2, "minutes": 0.0}  # epochs alone: epochs
    (tmp_path / "last.pt").write_bytes(b"")
    assert "minutes" not in assignment_options({}, tmp_path)  # a resumed run keeps what it was started with
    with pytest.raises(SystemExit):
        main(["captcha", "assignment", "--help"])
    assert "(default: 60.0)" in " ".join(capsys.readouterr().out.split())


def test_encoder_channels_are_parsed_or_refused_by_name() -> None:
    from imcaption.captcha.task import encoder_channels

    assert encoder_channels("16,32,64,192") == (16, 32, 64, 192)
    for bad in ("16,32,64", "16,32,64,x", "16,32,0,128"):
        with pytest.raises(ValueError, match="--channels takes four positive whole numbers"):
            encoder_channels(bad)
