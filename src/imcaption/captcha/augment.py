"""Label-preserving augmentation for captcha batches, on (B, 3, H, W) float tensors in 0-255."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from imcaption.captcha.train_config import AUGMENT_MODES


@dataclass(frozen=True)
class AugmentConfig:
    affine: bool = True
    # Whole-pixel translation, in pixels of the cached image: it moves the word without resampling, so
    # one-pixel strokes stay sharp (the affine warp blurs them). 0 turns it off.
    shift_x: int = 0
    shift_y: int = 0
    max_shift: float = 0.06
    scale: tuple[float, float] = (0.9, 1.1)
    max_rotation_deg: float = 4.0
    max_shear: float = 0.15


def augment_batch(
    images: torch.Tensor,
    generator: torch.Generator,
    config: AugmentConfig = AugmentConfig(),
    rows: slice = slice(None),
    total: int | None = None,
) -> torch.Tensor:
    """A random permutation of the color channels; a random whole-pixel shift if `config.shift_x` or
    `config.shift_y`; and, if `config.affine`, a small random affine warp. Returns floats in 0-255.

    `images` may be uint8: the shift and the permutation move whole pixels, so they run on the bytes (a
    quarter of the memory traffic of floats) and the result is converted once, with the same values.

    `images` may be rows `rows` of a global batch of `total` images (one rank's share under torchrun): the
    random draws are made for all `total` and this share takes its rows, so every image is augmented the same,
    and the generator advances the same, whatever the number of processes.

    Letters and noise get random colors, so swapping channels keeps every label true while teaching
    the network not to rely on hue. The warp resamples bilinearly, which softens one-pixel strokes
    at 64x128 (BENCHMARKS.md compares both)."""
    batch, total = images.shape[0], total or images.shape[0]
    if config.shift_x or config.shift_y:
        images = _shift(images, generator, config.shift_x, config.shift_y, rows, total)
    warped = _affine_warp(images.float(), generator, config, rows, total) if config.affine else images
    order = torch.rand(total, 3, generator=generator)[rows].argsort(dim=1)
    index = order.view(batch, 3, 1, 1).expand_as(warped)
    permuted = torch.gather(warped, 1, index).contiguous(memory_format=torch.channels_last)
    return permuted.float()


def augment_config(mode: str) -> AugmentConfig:
    """The augmentation a `TrainConfig.augment` mode names (not "none", which skips augmentation)."""
    if mode == "shift":
        return AugmentConfig(affine=False, shift_x=8, shift_y=5)
    if mode not in AUGMENT_MODES or mode == "none":
        raise ValueError(f"unknown augmentation {mode!r}; choose one of {', '.join(AUGMENT_MODES)}")
    return AugmentConfig(affine=mode == "full")


def _shift(images: torch.Tensor, generator: torch.Generator, max_x: int, max_y: int, rows: slice,
           total: int) -> torch.Tensor:  # fmt: skip
    """Each image moved by its own whole-pixel offset in [-max, max]; the uncovered border is white."""
    batch, _, height, width = images.shape
    # Pad the ink (255 - pixel) with zeros so the border comes out white.
    padded = F.pad(255 - images, (max_x, max_x, max_y, max_y))
    dx = torch.randint(0, 2 * max_x + 1, (total, 1), generator=generator)[rows]
    dy = torch.randint(0, 2 * max_y + 1, (total, 1), generator=generator)[rows]
    source_rows = (dy + torch.arange(height)).view(batch, height, 1)
    source_cols = (dx + torch.arange(width)).view(batch, 1, width)
    moved = padded.permute(0, 2, 3, 1)[torch.arange(batch).view(batch, 1, 1), source_rows, source_cols]  # (B, H, W, C)
    return 255 - moved.permute(0, 3, 1, 2)


def _affine_warp(images: torch.Tensor, generator: torch.Generator, config: AugmentConfig, rows: slice,
                 total: int) -> torch.Tensor:  # fmt: skip
    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(total, generator=generator)[rows] * (high - low) + low

    angle = uniform(-config.max_rotation_deg, config.max_rotation_deg) * math.pi / 180
    scale = uniform(*config.scale)
    shear = uniform(-config.max_shear, config.max_shear)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin + shear, uniform(-config.max_shift, config.max_shift)], dim=1),
            torch.stack([sin, cos, uniform(-config.max_shift, config.max_shift)], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    # Sample the ink (255 - pixel) so the area warped in from outside is white, not black.
    return 255 - F.grid_sample(255 - images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
