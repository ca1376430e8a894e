import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imcaption.captcha.dataset import CaptchaDataset
from imcaption.captcha.image_cache import build_cache, cache_paths, ensure_cache, open_cache
from imcaption.captcha.task import CaptchaTrainConfig
from imcaption.cli import main
from imcaption.images import ImageReadError, ImageSize, load_image, to_model_input

SIZE = ImageSize(32, 64)


@pytest.fixture()
def dataset(small_dataset: Path, tmp_path: Path) -> CaptchaDataset:
    root = tmp_path / "words_captcha"
    shutil.copytree(small_dataset, root, ignore=shutil.ignore_patterns(".imcaption_cache"))
    return CaptchaDataset.open(root)


def test_cache_holds_every_image_resized(dataset: CaptchaDataset) -> None:
    cache = build_cache(dataset, SIZE, workers=2, progress=False)
    assert cache.shape == (140, 32, 64, 3)
    assert cache.data_path.stat().st_size == 140 * 32 * 64 * 3
    for index in (0, 77, 139):
        expected = to_model_input(load_image(dataset.image_path(index)), SIZE)
        np.testing.assert_array_equal(cache.read([index])[0], expected)
    np.testing.assert_array_equal(cache.read(range(5, 9)), cache.read([5, 6, 7, 8]))
    np.testing.assert_array_equal(cache.read([9, 2])[1], cache.read([2])[0])


def test_valid_cache_is_reused_not_rebuilt(dataset: CaptchaDataset) -> None:
    first = ensure_cache(dataset, SIZE, workers=1, progress=False)
    before = first.data_path.stat().st_mtime_ns
    again = ensure_cache(dataset, SIZE, workers=1, progress=False)
    assert again.data_path.stat().st_mtime_ns == before


def test_changed_image_makes_the_cache_stale_and_it_is_rebuilt(dataset: CaptchaDataset) -> None:
    ensure_cache(dataset, SIZE, workers=1, progress=False)
    replacement = Image.new("RGB", (600, 320), (0, 0, 0))
    replacement.save(dataset.image_path(3))
    assert open_cache(dataset, SIZE) is None
    rebuilt = ensure_cache(dataset, SIZE, workers=1, progress=False)
    assert rebuilt.read([3]).max() == 0


def test_other_input_size_has_its_own_cache(dataset: CaptchaDataset) -> None:
    small = ensure_cache(dataset, SIZE, workers=1, progress=False)
    large = ensure_cache(dataset, ImageSize(64, 128), workers=1, progress=False)
    assert small.data_path != large.data_path
    assert open_cache(dataset, SIZE) is not None and open_cache(dataset, ImageSize(64, 128)) is not None


def test_crash_mid_build_never_leaves_a_valid_looking_cache(dataset: CaptchaDataset) -> None:
    ensure_cache(dataset, SIZE, workers=1, progress=False)
    (dataset.root / "a20.png").write_bytes(b"not a png at all")
    with pytest.raises(ImageReadError, match=r"a20\.png"):
        build_cache(dataset, SIZE, workers=1, progress=False, force=True)
    data_path, index_path = cache_paths(dataset.root, SIZE)
    assert not index_path.exists()
    assert open_cache(CaptchaDataset.open(dataset.root), SIZE) is None


def test_unreadable_image_is_named_through_the_cli(dataset: CaptchaDataset, capsys: pytest.CaptureFixture) -> None:
    (dataset.root / "a5.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert main(["captcha", "cache", str(dataset.root), "--height", "32", "--width", "64", "--quiet"]) == 2
    assert "a5.png" in capsys.readouterr().err


def test_other_mode_and_size_are_converted(dataset: CaptchaDataset, capsys: pytest.CaptureFixture) -> None:
    Image.open(dataset.image_path(8)).convert("L").resize((300, 160)).save(dataset.image_path(8))
    cache = build_cache(dataset, SIZE, workers=1, progress=False)
    assert cache.read([8]).shape == (1, 32, 64, 3)
    assert "1 images were not 600x320" in capsys.readouterr().err


def test_index_is_written_after_the_data(dataset: CaptchaDataset) -> None:
    cache = build_cache(dataset, SIZE, workers=1, progress=False)
    _, index_path = cache_paths(dataset.root, SIZE)
    assert index_path.stat().st_mtime_ns >= cache.data_path.stat().st_mtime_ns
    assert not [n for n in os.listdir(index_path.parent) if n.endswith(".partial")]


def test_a_killed_cache_build_is_redone_to_the_same_bytes(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from imcaption.captcha.generator import generate_dataset
    from imcaption.captcha.vocabulary import default_vocabulary

    root = tmp_path / "set"
    generate_dataset(root, default_vocabulary(), count=700, seed=2, progress=False)
    dataset = CaptchaDataset.open(root)
    size = CaptchaTrainConfig().input_size  # what `captcha cache` builds without --height/--width
    straight = build_cache(dataset, size, workers=1, progress=False)
    expected = straight.data_path.read_bytes()
    shutil.rmtree(straight.data_path.parent)

    command = [sys.executable, "-m", "imcaption", "captcha", "cache", str(root), "--workers", "1", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    data_path, index_path = cache_paths(root, size)
    deadline = time.monotonic() + 60
    while not list(data_path.parent.glob(f".{data_path.name}.*.partial")) and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.1)  # some images into the build
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert open_cache(dataset, size) is None  # nothing half-built passes for a cache
    assert main(["captcha", "cache", str(root), "--quiet"]) == 0
    assert data_path.read_bytes() == expected and index_path.is_file()
    assert not list(data_path.parent.glob("*.partial"))  # the killed build's temporary file went with it
