"""Captioning inputs: images decoded once into memory, or frozen-backbone features computed once and cached."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from imcaption.captioning.coco import CaptionedImage
from imcaption.engine.progress import progress_bar
from imcaption.files import write_text_atomically
from imcaption.images import ImageSize, as_batch, load_image, to_model_input

FEATURE_CACHE_VERSION = 1


def load_images(images: Sequence[CaptionedImage], side: int, progress: bool = True) -> np.ndarray:
    """(N, side, side, 3) uint8, each image resized like every model input."""
    size = ImageSize(side, side)
    bar = progress_bar(enabled=progress, iterable=images, desc="images")
    rows = [to_model_input(load_image(i.path), size) for i in bar]
    return np.stack(rows) if rows else np.zeros((0, side, side, 3), dtype=np.uint8)


def _fingerprint(images: Sequence[CaptionedImage]) -> str:
    digest = hashlib.sha1()
    for image in images:
        stat = image.path.stat()
        digest.update(f"{image.path} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def backbone_features(
    images: Sequence[CaptionedImage],
    cache_dir: Path,
    side: int,
    weights: str | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> np.ndarray:
    """MobileNetV2 feature grids (N, side/32 * side/32, 1280) as float16, computed once per image set and
    kept in one file (the tutorial's .npy per image, done in one array); reused while the images are unchanged."""
    from imcaption.models.mobilenet_v2 import imagenet_normalize, load_mobilenet_v2

    cells = (side // 32) ** 2
    stamp = _fingerprint(images)
    cache_dir.mkdir(parents=True, exist_ok=True)
    data_path = cache_dir / f"mobilenet_v2_{side}_{stamp[:12]}.f16"
    index_path = data_path.with_suffix(".json")
    shape = (len(images), cells, 1280)
    if index_path.is_file() and json.loads(index_path.read_text()).get("version") == FEATURE_CACHE_VERSION:
        return np.memmap(data_path, dtype=np.float16, mode="r", shape=shape)
    backbone = load_mobilenet_v2(weights)
    temp = data_path.with_name(data_path.name + ".partial")
    out = np.memmap(temp, dtype=np.float16, mode="w+", shape=shape)
    with torch.no_grad():
        for start in progress_bar(enabled=progress, iterable=range(0, len(images), batch_size), desc="features"):
            pixels = load_images(images[start : start + batch_size], side, progress=False)
            grid = backbone.features(imagenet_normalize(as_batch(pixels)))
            out[start : start + len(pixels)] = grid.flatten(2).transpose(1, 2).numpy().astype(np.float16)
    out.flush()
    del out
    os.replace(temp, data_path)
    write_text_atomically(
        index_path, json.dumps({"version": FEATURE_CACHE_VERSION, "count": len(images), "side": side})
    )
    return np.memmap(data_path, dtype=np.float16, mode="r", shape=shape)
