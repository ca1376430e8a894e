"""Captioning inputs: images decoded once into memory, or frozen-backbone features computed once and cached."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from imcaption.captioning.coco import CaptionedImage
from imcaption.engine.progress import progress_bar
from imcaption.files import publish, remove_dead_temps, temp_path, write_text_atomically
from imcaption.images import ImageSize, as_batch, load_image, to_model_input
from imcaption.locks import folder_lock

FEATURE_CACHE_VERSION = 2  # 2: keyed on the weights' SHA-256, the input size and the images


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


def feature_key(images: Sequence[CaptionedImage], side: int, weights: str | None) -> dict[str, object]:
    """What a feature cache was made from: a cache is used only while every field still matches."""
    from imcaption.models.mobilenet_v2 import weights_sha256

    return {"version": FEATURE_CACHE_VERSION, "count": len(images), "side": side,
            "weights_sha256": weights_sha256(weights), "images": _fingerprint(images)}  # fmt: skip


def _open_features(
    index_path: Path, data_path: Path, key: dict[str, object], shape: tuple[int, ...]
) -> np.ndarray | None:
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        return None
    expected_bytes = int(np.prod(shape)) * 2
    if index != key or not data_path.is_file() or data_path.stat().st_size != expected_bytes:
        return None
    return np.memmap(data_path, dtype=np.float16, mode="r", shape=shape)


def backbone_features(
    images: Sequence[CaptionedImage],
    cache_dir: Path,
    side: int,
    weights: str | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> np.ndarray:
    """MobileNetV2 feature grids (N, cells, 1280) as float16, computed once per image set and kept in one file
    (the tutorial's .npy per image, done in one array); reused while the images, the input size and the
    backbone's weights are the ones that made it. One process computes a cache at a time; another waits and
    then reads it."""
    from imcaption.models.mobilenet_v2 import feature_grid_side

    key = feature_key(images, side, weights)
    shape = (len(images), feature_grid_side(side) ** 2, 1280)
    cache_dir.mkdir(parents=True, exist_ok=True)
    data_path = cache_dir / f"mobilenet_v2_{side}_{str(key['images'])[:12]}.f16"
    index_path = data_path.with_suffix(".json")
    if (features := _open_features(index_path, data_path, key, shape)) is not None:
        return features
    with folder_lock(cache_dir, f"computing {data_path.name}", name=f"{data_path.stem}.lock"):
        if (features := _open_features(index_path, data_path, key, shape)) is None:
            remove_dead_temps(cache_dir)
            _compute_features(images, (data_path, index_path), key, shape, weights, batch_size, progress)
    return np.memmap(data_path, dtype=np.float16, mode="r", shape=shape)


def _compute_features(
    images: Sequence[CaptionedImage],
    paths: tuple[Path, Path],
    key: dict[str, object],
    shape: tuple[int, ...],
    weights: str | None,
    batch_size: int,
    progress: bool,
) -> None:
    from imcaption.models.mobilenet_v2 import imagenet_normalize, load_mobilenet_v2

    data_path, index_path = paths
    index_path.unlink(missing_ok=True)
    backbone = load_mobilenet_v2(weights)
    side = int(str(key["side"]))
    temp = temp_path(data_path)
    try:
        out = np.memmap(temp, dtype=np.float16, mode="w+", shape=shape)
        with torch.no_grad():
            for start in progress_bar(enabled=progress, iterable=range(0, len(images), batch_size), desc="features"):
                pixels = load_images(images[start : start + batch_size], side, progress=False)
                grid = backbone.features(imagenet_normalize(as_batch(pixels)))
                out[start : start + len(pixels)] = grid.flatten(2).transpose(1, 2).numpy().astype(np.float16)
        out.flush()
        del out
        publish(temp, data_path, durable=False)
    finally:
        temp.unlink(missing_ok=True)
    write_text_atomically(index_path, json.dumps(key))
