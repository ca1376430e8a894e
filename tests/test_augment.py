import pytest
import torch

from imcaption.augment import AugmentConfig, augment_batch
from imcaption.train import TrainConfig, Trainer


def images() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randint(0, 256, (6, 3, 16, 32)).float()


def test_color_mode_only_permutes_channels():
    batch = images()
    out = augment_batch(batch, torch.Generator().manual_seed(1), AugmentConfig(affine=False))
    # Every pixel keeps its three values, possibly in another channel order; nothing moves.
    assert torch.equal(out.sort(dim=1).values, batch.sort(dim=1).values)
    assert not torch.equal(out, batch)


def test_full_mode_also_warps_geometry():
    batch = images()
    out = augment_batch(batch, torch.Generator().manual_seed(1), AugmentConfig(affine=True))
    assert out.shape == batch.shape
    assert not torch.equal(out.sort(dim=1).values, batch.sort(dim=1).values)


def test_old_boolean_setting_still_loads_and_unknown_mode_is_refused(tmp_path):
    assert TrainConfig.from_dict({"augment": True}).augment == "full"
    assert TrainConfig.from_dict({"augment": False}).augment == "none"
    with pytest.raises(ValueError, match="unknown augmentation"):
        Trainer(tmp_path, tmp_path / "run", TrainConfig(augment="sometimes"), progress=False)
