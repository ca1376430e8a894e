import pytest
import torch

from imcaption.captcha.augment import AugmentConfig, augment_batch, augment_config
from imcaption.captcha.task import CaptchaTask, CaptchaTrainConfig


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
    assert CaptchaTrainConfig.from_dict({"augment": True}).augment == "full"
    assert CaptchaTrainConfig.from_dict({"augment": False}).augment == "none"
    with pytest.raises(ValueError, match="unknown augmentation"):
        CaptchaTask(tmp_path, CaptchaTrainConfig(augment="sometimes"), progress=False)


def test_shift_mode_moves_each_image_by_whole_pixels_with_a_white_border():
    batch = images()
    config = AugmentConfig(affine=False, shift_x=3, shift_y=2)
    out = augment_batch(batch, torch.Generator().manual_seed(2), config)
    assert out.shape == batch.shape
    moved_at_all = False
    for image, moved in zip(batch, out.sort(dim=1).values, strict=True):
        # Some whole-pixel offset within the limits reproduces the image exactly, white where it came from outside.
        padded = torch.nn.functional.pad(255 - image.sort(dim=0).values, (3, 3, 2, 2))
        offsets = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-3, 4)
            if torch.equal(moved, 255 - padded[:, 2 - dy : 2 - dy + 16, 3 - dx : 3 - dx + 32])
        ]
        assert offsets
        moved_at_all |= (0, 0) not in offsets
    assert moved_at_all


def test_modes_name_their_augmentation():
    assert augment_config("shift").shift_x > 0 and not augment_config("shift").affine
    assert augment_config("full").affine and augment_config("full").shift_x == 0
    assert not augment_config("color").affine and augment_config("color").shift_x == 0
    with pytest.raises(ValueError, match="unknown augmentation"):
        augment_config("none")


def test_old_checkpoints_keep_training_without_label_smoothing():
    old = CaptchaTrainConfig.from_dict({"augment": "color", "epochs": 12, "lr": 0.01})  # imcaption 0.1's flat dict
    assert old.label_smoothing == 0.0 and old.loop.epochs == 12 and old.loop.lr == 0.01
    assert CaptchaTrainConfig().label_smoothing > 0


@pytest.mark.parametrize("mode", ["shift", "full"])
def test_a_share_of_a_batch_is_augmented_as_in_the_whole_batch(mode: str) -> None:
    """Under torchrun each rank augments only its rows; they must come out as in a one-process run."""
    batch = torch.rand(6, 3, 32, 64) * 255
    config = augment_config(mode)
    whole = augment_batch(batch, torch.Generator().manual_seed(5), config)
    for rows in (slice(0, 3), slice(3, 6), slice(2, 4)):
        generator = torch.Generator().manual_seed(5)
        part = augment_batch(batch[rows], generator, config, rows, total=6)
        assert torch.allclose(part, whole[rows], atol=1e-4)
        assert torch.equal(generator.get_state(), _advanced(config))  # the stream advances as for all six


def _advanced(config) -> torch.Tensor:
    generator = torch.Generator().manual_seed(5)
    augment_batch(torch.rand(6, 3, 32, 64) * 255, generator, config)
    return generator.get_state()


@pytest.mark.parametrize("mode", ["shift", "full", "color"])
def test_bytes_in_give_the_same_floats_as_floats_in(mode):
    """Training hands the cache's uint8 pixels straight to the augmentation: the result must be the float path's."""
    batch = images()
    config = augment_config(mode)
    from_floats = augment_batch(batch, torch.Generator().manual_seed(3), config)
    from_bytes = augment_batch(batch.to(torch.uint8), torch.Generator().manual_seed(3), config)
    assert from_bytes.dtype == torch.float32
    assert from_bytes.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(from_bytes, from_floats)


def test_the_decoder_state_size_is_a_training_option_the_checkpoint_keeps(easy_dataset) -> None:
    from imcaption.engine.config import with_options
    from imcaption.models import RecognizerConfig, build_recognizer

    config = with_options(CaptchaTrainConfig(), {"height": 32, "width": 64, "hidden": 48, "train_limit": 32})
    task = CaptchaTask(easy_dataset, config, progress=False)
    assert task.model.cell.hidden_size == 48
    rebuilt = build_recognizer(RecognizerConfig.from_dict(task.description()["model_config"]))
    assert rebuilt.cell.hidden_size == 48
    assert CaptchaTrainConfig.from_dict(task.description()["config"]).hidden == 48
