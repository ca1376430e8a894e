"""What importing and using the reading API really loads, each in a fresh interpreter: no training code.

tests/test_imports.py checks the source's import graph; this checks the modules Python ends up with, package
roots and third-party imports included (matplotlib switches to the Agg backend on import, for the whole process).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from imcaption.captcha.reading_types import RECOGNIZER_FORMAT
from imcaption.captioning.model_spec import CaptionModelSpec, build_caption_model
from imcaption.captioning.reading_types import CAPTIONER_FORMAT
from imcaption.engine.checkpoint import export_model
from imcaption.extras import EXTRA_MODULES
from imcaption.models import EncoderConfig, RecognizerConfig, build_recognizer
from imcaption.text.char_tokenizer import CharTokenizer
from imcaption.text.word_tokenizer import WordTokenizer
from tests.conftest import TinyModel

# Training's modules and what only training needs: the loop, the tasks, augmentation, the image cache, plots.
TRAINING_ONLY = (
    "imcaption.engine.loop",
    "imcaption.engine.task",
    "imcaption.engine.records",
    "imcaption.engine.training_state",
    "imcaption.engine.run",
    "imcaption.captcha.task",
    "imcaption.captcha.augment",
    "imcaption.captcha.image_cache",
    "imcaption.captioning.task",
    "imcaption.visualize",
    "matplotlib",
)
# The top-level modules of the 'train' extra (torch and the rest): the core reads .onnx models without them.
TRAIN_EXTRA = EXTRA_MODULES["train"]


def loaded_modules(code: str) -> set[str]:
    """The names in sys.modules after `code` runs in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    ("code", "reader"),
    [
        ("import imcaption\nfrom imcaption import Recognizer", "imcaption.deploy.onnx_reader"),
        ("from imcaption import Captioner", "imcaption.api"),
    ],
)
def test_importing_the_readers_loads_no_training_code_and_no_torch(code: str, reader: str) -> None:
    """The PyTorch readers are loaded by the first model file that needs them, not by the import."""
    loaded = loaded_modules(code)
    assert reader in loaded  # the import did load the reading code
    assert not set(TRAINING_ONLY) & loaded, f"{code!r} loaded {sorted(set(TRAINING_ONLY) & loaded)}"
    assert not TRAIN_EXTRA & loaded, f"{code!r} loaded {sorted(TRAIN_EXTRA & loaded)}"


def test_the_probe_sees_training_code_where_it_is_imported() -> None:
    """The check above is only as good as its probe: importing a training task and the loop must show up in it."""
    loaded = loaded_modules("from imcaption.captcha.task import CaptchaTask\nfrom imcaption.engine.loop import Trainer")
    assert {"imcaption.engine.task", "imcaption.captcha.augment", "imcaption.captcha.image_cache"} <= loaded
    assert {"imcaption.engine.loop", "imcaption.engine.records", "imcaption.engine.training_state"} <= loaded
    assert "matplotlib" in loaded


def _recognizer_export(out: Path) -> Path:
    """An untrained sat recognizer's weights-only export: a real file to load, without training one."""
    config = RecognizerConfig(kind="sat", encoder=EncoderConfig(32, 64))
    described = {
        "model_config": config.to_dict(),
        "tokenizer": CharTokenizer().to_dict(),
        "image_size": {"height": 32, "width": 64},
    }
    export_model(out, build_recognizer(config).state_dict(), described, RECOGNIZER_FORMAT)
    return out


def _captioner_export(out: Path) -> Path:
    spec = CaptionModelSpec("sat", "cnn", image_size=32, max_length=6)
    tokenizer = WordTokenizer.fit(["a red circle", "a blue square"])
    described = {"model_config": asdict(spec), "tokenizer": tokenizer.to_dict()}
    export_model(out, build_caption_model(spec, tokenizer.vocab_size).state_dict(), described, CAPTIONER_FORMAT)
    return out


def test_loading_and_reading_a_model_loads_no_training_code(tmp_path: Path) -> None:
    torch.manual_seed(0)
    recognizer = _recognizer_export(tmp_path / "recognizer.safetensors")
    captioner = _captioner_export(tmp_path / "captioner.safetensors")
    code = (
        "import numpy as np\n"
        "from imcaption import Captioner, Recognizer\n"
        "image = np.zeros((40, 80, 3), dtype=np.uint8)\n"
        f"reading = Recognizer.load({str(recognizer)!r}, precision='fp32').read(image, attention=True)\n"
        "assert reading.attention is not None, reading\n"
        f"caption = Captioner.load({str(captioner)!r}).caption(image)\n"
        "assert isinstance(caption.text, str), caption\n"
    )
    loaded = loaded_modules(code)
    assert {"imcaption.models.sat", "imcaption.engine.search", "imcaption.models.caption_decoders"} <= loaded
    assert "torch" in loaded  # PyTorch models: the probe below sees torch where it is loaded
    assert not set(TRAINING_ONLY) & loaded, f"reading loaded {sorted(set(TRAINING_ONLY) & loaded)}"


def test_reading_an_onnx_model_through_the_api_loads_no_torch(tiny_model: TinyModel) -> None:
    """What `pip install imcaption` (the core, without the 'train' extra) relies on: the API picks ONNX Runtime for
    an .onnx file, and nothing on that path imports torch or the rest of the 'train' extra."""
    code = (
        "import imcaption\n"
        f"reading = imcaption.Recognizer.load({str(tiny_model.onnx)!r}).read({str(tiny_model.image)!r})\n"
        f"assert reading.word == {tiny_model.word!r}, reading\n"
        f"assert abs(reading.confidence - {tiny_model.confidence!r}) < 1e-4, reading\n"
    )
    loaded = loaded_modules(code)
    assert {"imcaption.api", "imcaption.deploy.onnx_reader", "onnxruntime"} <= loaded
    assert not TRAIN_EXTRA & loaded, f"reading an .onnx model loaded {sorted(TRAIN_EXTRA & loaded)}"
    assert not {"imcaption.captcha.recognizer", "imcaption.engine.search"} & loaded
