"""`pip install imcaption` without extras, into a fresh virtual environment, from the package index: the core reads
an exported .onnx captcha model, through the API and the command line, as PyTorch reads it, and has no torch.

It needs the package index (about 40 MB of wheels the first time, pip's cache after that) and is skipped, saying
so, where none answers."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imcaption.extras import install_hint
from tests.conftest import TinyModel

ROOT = Path(__file__).resolve().parents[1]
# What building the package reads; copied so that the build leaves nothing (egg-info, build/) in the work tree.
SOURCES = ("pyproject.toml", "README.md", "src")
INSTALL_SECONDS = 600  # a generous bound; on an idle 2-core machine with a warm pip cache it takes well under 2 min


def pip(venv: Path, *args: str, timeout: float = INSTALL_SECONDS) -> subprocess.CompletedProcess:
    command = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def index_answers(venv: Path) -> str | None:
    """None if the package index lists onnxruntime, else why not (pip's last line)."""
    done = pip(venv, "index", "versions", "onnxruntime", timeout=120)
    return None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["no answer"])[-1]


def copy_sources(target: Path) -> Path:
    target.mkdir()
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with `pip install <the project>`: the core dependencies only."""
    root = tmp_path_factory.mktemp("core_install")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    reason = index_answers(venv)
    if reason is not None:
        pytest.skip(f"no package index reachable to install the core from: {reason}")
    started = time.monotonic()
    done = pip(venv, "install", "--quiet", str(copy_sources(root / "project")))
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"core install: {time.monotonic() - started:.0f} s, {installed_bytes(venv) / 2**20:.0f} MiB")
    return venv


def installed_bytes(venv: Path) -> int:
    """What the install put in site-packages, less the installer that every venv starts with (pip, setuptools)."""
    (site,) = (venv / "lib").glob("python*/site-packages")
    tooling = ("pip", "setuptools", "_distutils_hack", "pkg_resources", "distutils")  # distutils-precedence.pth
    kept = [p for p in site.iterdir() if p.name.split("-")[0] not in tooling]
    return sum(f.stat().st_size for p in kept for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())


def run_core(venv: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], capture_output=True, text=True, timeout=300)


def test_the_core_has_no_torch_and_none_of_the_extras(core_venv: Path) -> None:
    done = pip(core_venv, "list", "--format=freeze", timeout=120)
    installed = {line.split("==")[0].lower() for line in done.stdout.splitlines()}
    assert {"imcaption", "numpy", "pillow", "onnxruntime"} <= installed
    assert not {"torch", "safetensors", "matplotlib", "fastapi", "onnx", "imagecodecs"} & installed
    probe = run_core(core_venv, "python", "-c", "import torch")
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr


def test_the_core_reads_an_onnx_model_as_pytorch_does(core_venv: Path, tiny_model: TinyModel) -> None:
    code = (
        "import sys\n"
        "import imcaption\n"
        f"reading = imcaption.Recognizer.load({str(tiny_model.onnx)!r}).read({str(tiny_model.image)!r})\n"
        "print(reading.word, reading.confidence, 'torch' in sys.modules)\n"
    )
    done = run_core(core_venv, "python", "-c", code)
    assert done.returncode == 0, done.stderr
    word, confidence, torch_loaded = done.stdout.split()
    # The PyTorch reader's word, a letter at every step (5 letters and the step that would have read <end>).
    assert word == tiny_model.word and len(word) == 6
    assert float(confidence) == pytest.approx(tiny_model.confidence, abs=1e-4)
    assert torch_loaded == "False"


def test_the_core_command_line_reads_and_names_the_extra_it_lacks(core_venv: Path, tiny_model: TinyModel) -> None:
    done = run_core(core_venv, "imcaption", "captcha", "read", str(tiny_model.onnx), str(tiny_model.image))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:2] == [str(tiny_model.image), tiny_model.word]
    train = run_core(core_venv, "imcaption", "captcha", "train", "data", "--out", "run")
    assert (train.returncode, train.stderr) == (2, install_hint("imcaption captcha train", "train") + "\n")
    export = run_core(core_venv, "imcaption", "captcha", "read", str(tiny_model.export), str(tiny_model.image))
    assert (export.returncode, export.stderr) == (2, install_hint("imcaption captcha read", "train") + "\n")
