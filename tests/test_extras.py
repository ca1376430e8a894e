"""The extras: pyproject.toml's lists against imcaption/extras.py, and the one-line message a command gives when the
extra it needs is missing (run here with the extras' modules hidden, so no second environment is needed; the real
core install is tests/test_core_install.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata, util
from pathlib import Path

import pytest

from imcaption.captcha.face_list import face_list
from imcaption.captcha.fonts import FACES
from imcaption.extras import EXTRA_MODULES, MissingExtra, extra_for, install_hint, needs_extra
from tests.conftest import TinyModel

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
SELF = re.compile(r"^imcaption\[(?P<extras>[a-z,]+)\]$")
# Distributions found through their metadata, never imported: the captcha faces (captcha/fonts.py) and the
# universal style's (captcha/face_list.py).
FONT_DISTRIBUTIONS = {face.distribution for face in FACES.values()} | {face.distribution for face in face_list().faces}


def project() -> dict:
    return tomllib.loads(PYPROJECT.read_text())["project"]


def distribution_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def import_names(distribution: str) -> set[str]:
    """The top-level modules an installed distribution provides (this environment has every extra)."""
    return {module for module, owners in metadata.packages_distributions().items()
            if distribution in {owner.lower().replace("_", "-") for owner in owners}}  # fmt: skip


def test_the_core_is_onnx_runtime_numpy_and_pillow() -> None:
    assert sorted(map(distribution_name, project()["dependencies"])) == ["numpy", "onnxruntime", "pillow"]


def test_every_extra_s_packages_are_known_to_the_missing_module_lookup() -> None:
    """Each package of an extra (or the extras it includes) has its import name in EXTRA_MODULES under that extra,
    so a command that misses it names the extra that installs it."""
    extras = project()["optional-dependencies"]
    assert set(EXTRA_MODULES) == set(extras) - {"dev"}
    for extra, requirements in extras.items():
        if extra == "dev":
            continue
        for requirement in requirements:
            if included := SELF.match(requirement):
                for other in included["extras"].split(","):
                    assert EXTRA_MODULES[other] <= EXTRA_MODULES[extra], f"{extra} includes {other}"
                continue
            name = distribution_name(requirement)
            if name in FONT_DISTRIBUTIONS:
                continue
            provided = import_names(name)
            assert provided, f"{name} ({extra}) is not installed here"
            # uvicorn's speed-ups are used by uvicorn, never imported by imcaption: any of their modules will do.
            if name not in ("httptools", "uvloop"):
                assert provided & EXTRA_MODULES[extra], f"{extra}: {name} provides {provided}, none in EXTRA_MODULES"


def test_every_module_listed_is_importable_here() -> None:
    """A misspelt import name would never match a missing module: each must be found in this full environment."""
    missing = [m for modules in EXTRA_MODULES.values() for m in modules if util.find_spec(m) is None]
    assert not missing


def test_dev_installs_every_extra() -> None:
    """`make run`, `make test` and CI install `.[dev]`: every extra and the test tools."""
    extras = project()["optional-dependencies"]
    included = {e for r in extras["dev"] if (m := SELF.match(r)) for e in m["extras"].split(",")}
    assert included == set(extras) - {"dev"}
    assert {"pytest", "ruff"} <= {distribution_name(r) for r in extras["dev"]}


def test_a_missing_module_is_named_by_the_command_s_extra_first() -> None:
    assert extra_for("torch.nn.functional") == "train"
    assert extra_for("torch", ("export",)) == "export"  # export brings torch too
    assert extra_for("torch", ("serve",)) == "train"  # serve does not: the first extra that does
    assert extra_for("imagecodecs", ("serve",)) == "serve"
    assert extra_for("onnx") == "export"
    assert extra_for("yaml") is None and extra_for(None) is None  # no extra has it: a real error


def test_needs_extra_names_the_extra_and_keeps_other_errors() -> None:
    with pytest.raises(MissingExtra) as caught, needs_extra("reading best.pt", "train"):
        raise ModuleNotFoundError("No module named 'safetensors'", name="safetensors")
    assert str(caught.value) == "reading best.pt needs the 'train' extra: pip install 'imcaption[train]'"
    assert caught.value.name == "safetensors" and caught.value.extra == "train"
    with pytest.raises(ModuleNotFoundError) as other, needs_extra("reading best.pt"):
        raise ModuleNotFoundError("No module named 'nonexistent'", name="nonexistent")
    assert not isinstance(other.value, MissingExtra)


# Run first in the subprocesses below: every module of every extra is missing, as after `pip install imcaption`.
HIDE_EXTRAS = f"""
import importlib.abc, sys
HIDDEN = {sorted(set().union(*EXTRA_MODULES.values()))!r}
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Hide())
"""


def run_hidden(code: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-c", HIDE_EXTRAS + code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


COMMANDS = [
    (["captcha", "train", "data", "--out", "run"], "imcaption captcha train", "train"),
    (["captcha", "evaluate", "model.onnx", "data"], "imcaption captcha evaluate", "train"),
    (["captcha", "read", "best.pt", "a8.png"], "imcaption captcha read", "train"),
    (["captcha", "generate", "data", "--count", "2"], "imcaption captcha generate", "generate"),
    (["captcha", "export", "best.pt", "--onnx", "model.onnx"], "imcaption captcha export", "export"),
    (["caption", "train", "data", "--out", "run"], "imcaption caption train", "caption"),
    (["serve", "model.onnx"], "imcaption serve", "serve"),
]


def test_each_command_names_its_missing_extra_in_one_line_and_exits_2(tmp_path: Path) -> None:
    for path in ("best.pt", "model.onnx", "a8.png"):
        (tmp_path / path).write_bytes(b"")
    code = (
        "import contextlib, io, json\n"
        "from imcaption.cli import main\n"
        "results = []\n"
        f"for argv in {[argv for argv, _, _ in COMMANDS]!r}:\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        results.append((main(argv), err.getvalue()))\n"
        "print(json.dumps(results))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", HIDE_EXTRAS + code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.splitlines()[-1])
    for (_, command, extra), (code_, stderr) in zip(COMMANDS, results, strict=True):
        assert (code_, stderr) == (2, install_hint(command, extra) + "\n"), command


def test_help_works_without_the_extras_and_shows_where_one_is_missing() -> None:
    done = run_hidden(
        "import contextlib, io\n"
        "from imcaption.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "print(out.getvalue())\n"
    )
    assert "captcha" in done.stdout and "(needs the 'caption' extra)" in done.stdout


def test_the_api_names_the_extra_for_a_pytorch_model_and_reads_onnx_without_it(tiny_model: TinyModel) -> None:
    done = run_hidden(
        "import imcaption\n"
        "try:\n"
        f"    imcaption.Recognizer.load({str(tiny_model.export)!r})\n"
        "except ModuleNotFoundError as err:\n"
        "    print(err)\n"
        f"print(imcaption.Recognizer.load({str(tiny_model.onnx)!r}).read({str(tiny_model.image)!r}).word)\n"
    )
    hint = install_hint("reading a PyTorch checkpoint or export", "train")
    assert done.stdout.splitlines() == [hint, tiny_model.word]


def test_the_service_loads_an_onnx_recognizer_without_torch(tiny_model: TinyModel) -> None:
    """`imcaption serve model.onnx` needs the 'serve' extra over the core, not torch."""
    done = run_hidden(
        "import sys\n"
        "import numpy as np\n"
        "from imcaption.images import load_image, to_model_input\n"
        "from imcaption.serve.models import load_served_model\n"
        f"served = load_served_model({str(tiny_model.onnx)!r})\n"
        f"pixels = to_model_input(load_image({str(tiny_model.image)!r}), served.size)[None]\n"
        "print(served.info['backend'], served.run(pixels)[0]['word'], 'torch' in sys.modules)\n"
    )
    assert done.stdout.split() == ["onnxruntime", tiny_model.word, "False"]
