"""Two processes on one folder: cache builds and generations wait for each other and end with the bytes of a
single run; two trainings into one run folder are refused; temporary files of live processes are left alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imcaption.captcha.dataset import CaptchaDataset
from imcaption.captcha.generator import generate_dataset
from imcaption.captcha.image_cache import build_cache, cache_paths
from imcaption.captcha.vocabulary import default_vocabulary
from imcaption.cli import main
from imcaption.files import remove_dead_temps, temp_path
from imcaption.images import ImageSize
from imcaption.locks import FolderBusyError, folder_lock

SIZE = ImageSize(32, 64)
COUNT = 280


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "imcaption", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _images(root: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(root.glob("a*.png"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A dataset generated and cached by one process alone: what every concurrent run must end with."""
    root = tmp_path_factory.mktemp("single") / "set"
    generate_dataset(root, default_vocabulary(), count=COUNT, seed=4, workers=1, progress=False)
    cache = build_cache(CaptchaDataset.open(root), SIZE, workers=1, progress=False)
    return root, cache.data_path.read_bytes()


def test_two_generators_into_one_folder_both_finish_with_the_single_runs_images(
    reference: tuple[Path, bytes], tmp_path: Path
) -> None:
    root = tmp_path / "set"
    args = ("captcha", "generate", str(root), "--count", str(COUNT), "--seed", "4", "--workers", "1", "--quiet")
    first, second = _cli(*args), _cli(*args)
    outcomes = [(process.wait(timeout=300), process.stderr.read()) for process in (first, second)]
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    assert _images(root) == _images(reference[0])
    assert not list(root.glob("*.partial"))


@pytest.mark.parametrize("attempt", range(3))
def test_two_cache_builds_at_once_both_finish_with_the_bytes_of_one_build(
    reference: tuple[Path, bytes], tmp_path: Path, attempt: int
) -> None:
    root = tmp_path / "set"
    generate_dataset(root, default_vocabulary(), count=COUNT, seed=4, workers=1, progress=False)
    args = ("captcha", "cache", str(root), "--height", "32", "--width", "64", "--workers", "1", "--quiet")
    first, second = _cli(*args), _cli(*args)
    outcomes = [(process.wait(timeout=300), process.stderr.read()) for process in (first, second)]
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    data_path, index_path = cache_paths(root, SIZE)
    assert data_path.read_bytes() == reference[1] and index_path.is_file()
    assert not list(data_path.parent.glob("*.partial"))


def test_a_builder_that_waited_uses_the_cache_the_first_one_built(reference: tuple[Path, bytes]) -> None:
    dataset = CaptchaDataset.open(reference[0])
    data_path, _ = cache_paths(dataset.root, SIZE)
    built = data_path.stat().st_mtime_ns
    # Hold the build lock as a first builder would, then let a second builder in after the cache is complete.
    with folder_lock(data_path.parent, "a test holding the build", name=f"{data_path.stem}.lock"):
        waiting = _cli("captcha", "cache", str(dataset.root), "--height", "32", "--width", "64", "--rebuild", "--quiet")
        with pytest.raises(subprocess.TimeoutExpired):
            waiting.wait(timeout=3)  # it waits for the lock instead of writing beside the holder
    assert waiting.wait(timeout=120) == 0
    assert f"waiting for process {os.getpid()}" in waiting.stderr.read()
    assert data_path.stat().st_mtime_ns == built  # it used the finished cache rather than building it again


def test_a_second_training_into_a_busy_run_folder_is_refused_naming_the_holder(
    easy_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "run"
    with folder_lock(run, "training"):
        code = main(["captcha", "train", str(easy_dataset), "--out", str(run), "--max-steps", "1", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"in use by process {os.getpid()} (training)" in err
    assert not (run / "last.pt").exists()


def test_a_held_folder_refuses_a_non_waiting_locker(tmp_path: Path) -> None:
    with folder_lock(tmp_path, "first"), pytest.raises(FolderBusyError, match=f"process {os.getpid()} \\(first\\)"):
        with folder_lock(tmp_path, "second", wait=False):
            pass
    with folder_lock(tmp_path, "again", wait=False) as waited:  # released when the first block ended
        assert waited is False


def test_resume_without_a_checkpoint_says_where_it_looked(
    easy_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "run"
    code = main(["captcha", "train", str(easy_dataset), "--out", str(run), "--resume", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--resume: no checkpoint" in err and str((run / "last.pt").resolve()) in err


def test_only_leftovers_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    live = temp_path(tmp_path / "mine.u8")  # this process's, still at work
    leftover = tmp_path / f".images.u8.{dead_pid}.abc123.partial"
    leftover.write_bytes(b"half")
    legacy = tmp_path / "a9.png.partial"  # imcaption 0.2's fixed name
    legacy.write_bytes(b"half")
    assert remove_dead_temps(tmp_path) == 2
    assert live.exists() and not leftover.exists() and not legacy.exists()
