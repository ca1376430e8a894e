"""The Python API and weights-only exports, on a real recognizer trained on the easy set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imcaption import Reading, Recognizer
from imcaption.captcha.dataset import CaptchaDataset
from imcaption.cli import main
from imcaption.engine.checkpoint import CheckpointError


def _val_images(easy_dataset: Path, count: int) -> tuple[list[Path], list[str]]:
    dataset = CaptchaDataset.open(easy_dataset)
    ids = list(dataset.split("val").indices)[:count]
    return [dataset.image_path(i) for i in ids], [dataset.labels[i] for i in ids]


def test_read_accepts_paths_pil_images_and_arrays_one_or_many(trained_sat: Path, easy_dataset: Path) -> None:
    recognizer = Recognizer.load(trained_sat)
    paths, truths = _val_images(easy_dataset, 12)
    from_paths = recognizer.read(paths)
    assert [type(r) for r in from_paths] == [Reading] * 12
    assert sum(r.word == t for r, t in zip(from_paths, truths, strict=True)) >= 7  # it reads, not guesses
    pil = [Image.open(p) for p in paths]
    arrays = np.stack([np.asarray(image.convert("RGB")) for image in pil])
    for other in (recognizer.read(pil), recognizer.read(list(arrays)), recognizer.read(arrays)):
        assert [r.word for r in other] == [r.word for r in from_paths]
        np.testing.assert_allclose([r.confidence for r in other], [r.confidence for r in from_paths], rtol=1e-5)
    single = recognizer.read(paths[0])
    assert isinstance(single, Reading) and single.word == from_paths[0].word
    assert 0.0 < single.confidence <= 1.0 and single.attention is None


def test_long_lists_are_read_in_bounded_chunks_with_the_same_result(trained_sat: Path, easy_dataset: Path) -> None:
    recognizer = Recognizer.load(trained_sat)
    paths, _ = _val_images(easy_dataset, 10)
    seen: list[int] = []
    decode = recognizer.decode

    def counting(images, *args):
        seen.append(images.shape[0])
        return decode(images, *args)

    recognizer.decode = counting  # type: ignore[method-assign]
    chunked = recognizer.read(paths, batch_size=3)
    assert seen == [3, 3, 3, 1]
    assert [r.word for r in chunked] == [r.word for r in Recognizer.load(trained_sat).read(paths)]


def test_attention_and_lexicon(trained_sat: Path, easy_dataset: Path) -> None:
    recognizer = Recognizer.load(trained_sat)
    paths, _ = _val_images(easy_dataset, 4)
    rows, cols = recognizer.config.encoder.grid
    for reading in recognizer.read(paths, attention=True):
        assert reading.attention.shape[1:] == (rows, cols) and reading.attention.shape[0] >= len(reading.word)
        np.testing.assert_allclose(reading.attention.sum(axis=(1, 2)), 1.0, atol=1e-5)
    only = recognizer.read(paths, beam=3, lexicon=recognizer.lexicon(["cat", "dog"]))
    assert {r.word for r in only} <= {"cat", "dog"}
    with pytest.raises(ValueError, match="greedy"):
        recognizer.read(paths, beam=3, attention=True)
    with pytest.raises(TypeError, match="cannot read a dict"):
        recognizer.read([{"not": "an image"}])


def test_export_is_weights_only_smaller_and_reads_the_same(
    trained_sat: Path, easy_dataset: Path, tmp_path: Path
) -> None:
    exported = tmp_path / "model.safetensors"
    assert main(["captcha", "export", str(trained_sat), "--out", str(exported)]) == 0
    assert exported.read_bytes()[:2] != b"PK"  # not a torch (pickle) archive
    assert exported.stat().st_size < 0.5 * trained_sat.stat().st_size
    paths, _ = _val_images(easy_dataset, 16)
    a, b = Recognizer.load(trained_sat).read(paths), Recognizer.load(exported).read(paths)
    assert [r.word for r in a] == [r.word for r in b]
    np.testing.assert_allclose([r.confidence for r in a], [r.confidence for r in b], rtol=1e-6)
    assert main(["captcha", "read", str(exported), str(paths[0])]) == 0
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(exported.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cannot read model file"):
        Recognizer.load(damaged)


def test_cuda_without_a_gpu_is_a_clear_error(trained_sat: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="no CUDA device"):
        Recognizer.load(trained_sat, device="cuda")
