"""Generation that survives a kill and never mislabels a folder: the manifest is the proof of completeness."""

from __future__ import annotations

import filecmp
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imcaption.captcha.generator import generate_dataset
from imcaption.captcha.vocabulary import default_vocabulary
from imcaption.cli import main
from imcaption.manifest import MANIFEST, DatasetFolderError

COUNT = 300


def _generate_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "imcaption", "captcha", "generate", str(out), "--count", str(COUNT),
            "--seed", "5", "--workers", "1", "--quiet"]  # fmt: skip


def test_a_killed_generation_resumes_to_the_same_bytes(tmp_path: Path) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(_generate_command(straight), check=True)
    process = subprocess.Popen(_generate_command(killed))
    deadline = time.monotonic() + 60
    while len(list(killed.glob("a*.png"))) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    drawn = len(list(killed.glob("a*.png")))
    assert 20 <= drawn < COUNT, "the kill came too late to test anything"
    assert json.loads((killed / MANIFEST).read_text())["complete"] is False
    assert not (killed / "spec_train_val.txt").exists()  # no labels before every image they describe exists

    assert main(["captcha", "generate", str(killed), "--count", str(COUNT), "--seed", "5", "--quiet"]) == 0
    names = sorted(p.name for p in straight.iterdir())
    assert names == sorted(p.name for p in killed.iterdir())
    _, mismatch, errors = filecmp.cmpfiles(straight, killed, names, shallow=False)
    assert mismatch == [] and errors == []


def test_other_settings_or_a_real_dataset_are_refused_and_left_untouched(
    small_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    words = default_vocabulary()
    ours = tmp_path / "ours"
    generate_dataset(ours, words, count=14, seed=1, workers=1, progress=False)
    before = {p.name: p.read_bytes() for p in ours.iterdir()}
    with pytest.raises(DatasetFolderError, match=r"seed 1 \(asked 2\)"):
        generate_dataset(ours, words, count=14, seed=2, workers=1, progress=False)
    with pytest.raises(DatasetFolderError, match="vocabulary_sha256"):
        generate_dataset(ours, words[:100], count=14, seed=1, workers=1, progress=False)
    assert {p.name: p.read_bytes() for p in ours.iterdir()} == before

    real = tmp_path / "real"
    real.mkdir()
    for name in ("a0.png", "spec_train_val.txt"):
        (real / name).write_bytes((small_dataset / name).read_bytes())
    assert main(["captcha", "generate", str(real), "--count", "14", "--quiet"]) == 2
    assert "holds a dataset but no imcaption.json" in capsys.readouterr().err
    assert sorted(p.name for p in real.iterdir()) == ["a0.png", "spec_train_val.txt"]


def test_scenes_resume_and_refuse_other_settings(tmp_path: Path) -> None:
    from imcaption.captioning.scenes import generate_scenes
    from imcaption.manifest import is_complete

    generate_scenes(tmp_path, count=12, seed=1, progress=False)
    assert is_complete(tmp_path)
    reference = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    (tmp_path / "images" / "s3.png").unlink()
    generate_scenes(tmp_path, count=12, seed=1, progress=False)  # same settings: fills the gap
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == reference
    with pytest.raises(DatasetFolderError, match=r"seed 1 \(asked 2\)"):
        generate_scenes(tmp_path, count=12, seed=2, progress=False)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == reference
