"""Shared fixtures: a tiny real-style dataset and an easy dataset with a recognizer trained on it."""

from __future__ import annotations

import signal
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from imcaption.captcha.generator import V1_STYLE, generate_dataset
from imcaption.captcha.vocabulary import default_vocabulary

EASY_WORDS = [
    "cat", "dog", "sun", "tree", "bird", "fish", "moon", "star", "rain", "snow",
    "wind", "fire", "lake", "hill", "road", "book", "lamp", "door", "milk", "bread",
]  # fmt: skip


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """140 images in the default style, seed 3; tests must not modify it."""
    root = tmp_path_factory.mktemp("small") / "words_captcha"
    generate_dataset(root, default_vocabulary(), count=140, seed=3, workers=1, progress=False)
    return root


@pytest.fixture(scope="session")
def easy_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One font, no noise, 20 words: a model should learn it in about a minute."""
    root = tmp_path_factory.mktemp("easy") / "words_captcha"
    style = replace(V1_STYLE, noise=False, faces=("rounded-heavy",))
    generate_dataset(root, EASY_WORDS, count=1680, seed=11, workers=2, style=style, progress=False)
    return root


@pytest.fixture(scope="session")
def trained_sat(easy_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """best.pt of a sat recognizer trained on the easy set."""
    from imcaption.captcha.task import CaptchaTask
    from imcaption.engine.run import open_run

    run = tmp_path_factory.mktemp("run_sat")
    # fp32 on every machine, so that the accuracy bars below do not depend on the CPU (bf16 has its own tests).
    options = dict(model="sat", epochs=20, batch_size=32, lr=3e-3, warmup_steps=50, height=32, width=64, augment="none",
                   precision="fp32")  # fmt: skip
    open_run(CaptchaTask, easy_dataset, run, options, progress=False).run()
    return run / "best.pt"


@dataclass(frozen=True)
class TinyModel:
    """An untrained recognizer as a weights-only export and as its ONNX export, an image, and what PyTorch reads in
    the image (fp32, as ONNX Runtime reads)."""

    export: Path
    onnx: Path
    image: Path
    word: str
    confidence: float


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    """A small sat recognizer, untrained, exported as `captcha export --out` and `--onnx` write it: real model files
    for tests of the read path that need no training. Its <pad>, <start> and <end> scores are pushed far down, so it
    reads a letter at every step (six) rather than nothing, and a comparison of readings compares letters."""
    import numpy as np
    import torch
    from PIL import Image

    from imcaption.api import Recognizer
    from imcaption.captcha.reading_types import RECOGNIZER_FORMAT
    from imcaption.deploy.onnx_export import export_onnx
    from imcaption.engine.checkpoint import export_model
    from imcaption.models import EncoderConfig, RecognizerConfig, build_recognizer
    from imcaption.text.char_tokenizer import END, PAD, START, CharTokenizer

    root = tmp_path_factory.mktemp("tiny_model")
    torch.manual_seed(0)
    config = RecognizerConfig(kind="sat", encoder=EncoderConfig(32, 64))
    model = build_recognizer(config)
    with torch.no_grad():
        model.output[-1].bias[[PAD, START, END]] = -30.0
    described = {
        "model_config": config.to_dict(),
        "tokenizer": CharTokenizer().to_dict(),
        "image_size": {"height": 32, "width": 64},
    }
    export = root / "tiny.safetensors"
    export_model(export, model.state_dict(), described, RECOGNIZER_FORMAT)
    onnx = export_onnx(export, root / "tiny.onnx")
    image = root / "a8.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 90, 3), dtype=np.uint8)).save(image)
    reading = Recognizer.load(export, precision="fp32").read(image)
    return TinyModel(export, onnx, image, reading.word, reading.confidence)


@pytest.fixture()
def sigint_handled():
    """The signal tests send SIGINT; a suite started in the background (`make test &`) inherits it ignored, which
    the trainer respects (as under nohup), so give it its usual meaning here."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture()
def one_thread():
    """Exact equality of weights needs the same reduction order: one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
