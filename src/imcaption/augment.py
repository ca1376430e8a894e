"""Label-preserving augmentation for captcha batches, on (B, 3, H, W) float tensors in 0-255."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

AUGMENT_MODES = ("full", "color", "none")


@dataclass(frozen=True)
class AugmentConfig:
    affine: bool = True
    max_shift: float = 0.06
    scale: tuple[float, float] = (0.9, 1.1)
    max_rotation_deg: float = 4.0
    max_shear: float = 0.15


def augment_batch(
    images: torch.Tensor, generator: torch.Generator, config: AugmentConfig = AugmentConfig()
) -> torch.Tensor:
    """A random permutation of the color channels and, if `config.affine`, a small random affine warp.

    Letters and noise get random colors, so swapping channels keeps every label true while teaching
    the network not to rely on hue. The warp resamples bilinearly, which softens one-pixel strokes
    at 64x128 (BENCHMARKS.md compares both)."""
    batch = images.shape[0]
    warped = _affine_warp(images, generator, config) if config.affine else images
    order = torch.rand(batch, 3, generator=generator).argsort(dim=1)
    index = order.view(batch, 3, 1, 1).expand_as(warped)
    return torch.gather(warped, 1, index).contiguous(memory_format=torch.channels_last)


def _affine_warp(images: torch.Tensor, generator: torch.Generator, config: AugmentConfig) -> torch.Tensor:
    batch = images.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(batch, generator=generator) * (high - low) + low

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
