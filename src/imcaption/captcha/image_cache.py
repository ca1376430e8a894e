"""Decode every PNG once: one uint8 array of resized images per dataset and input size.

Files in DATA_DIR/.imcaption_cache/: images_{H}x{W}.u8 (raw N x H x W x 3 bytes) and
images_{H}x{W}.json (the index). The index is written last, by rename, so a build that dies half way
leaves no index and is redone; it records a fingerprint of the image files (count, names, sizes,
modification times), so edited or added images make the cache stale. One process builds a cache at a time
(a lock file per cache, images_{H}x{W}.lock), into a temporary file of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from imcaption.captcha.dataset import CaptchaDataset
from imcaption.engine.progress import progress_bar
from imcaption.files import publish, remove_dead_temps, temp_path, write_text_atomically
from imcaption.images import ImageSize, load_image, to_model_input
from imcaption.locks import folder_lock

CACHE_DIR = ".imcaption_cache"
FORMAT_VERSION = 2  # 2: images decoded upright (EXIF) and 16-bit scaled, as imcaption.images does
DEFAULT_SIZE = ImageSize(96, 192)  # the sat recognizer's input (captcha.train_config.DEFAULT_INPUT_SIZE)


@dataclass(frozen=True)
class ImageCache:
    data_path: Path
    count: int
    size: ImageSize

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.count, self.size.height, self.size.width, 3)

    @property
    def record_bytes(self) -> int:
        return self.size.height * self.size.width * 3

    def read(self, indices: np.ndarray | list[int] | range) -> np.ndarray:
        """Images at `indices` as (len, H, W, 3) uint8.

        pread instead of a memory map: pages read this way stay in the page cache and do not count
        against the process's resident memory."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), self.size.height, self.size.width, 3), dtype=np.uint8)
        flat = out.reshape(len(indices), -1)
        fd = os.open(self.data_path, os.O_RDONLY)
        try:
            if len(indices) and np.all(np.diff(indices) == 1):
                _read_exact(fd, memoryview(flat).cast("B"), int(indices[0]) * self.record_bytes)
            else:
                for row, index in enumerate(indices):
                    _read_exact(fd, memoryview(flat[row]).cast("B"), int(index) * self.record_bytes)
        finally:
            os.close(fd)
        return out


def _read_exact(fd: int, buffer: memoryview, offset: int) -> None:
    done = 0
    while done < len(buffer):
        got = os.preadv(fd, [buffer[done:]], offset + done)
        if got == 0:
            raise OSError("image cache file is shorter than its index says; rebuild it")
        done += got


def cache_paths(root: Path, size: ImageSize) -> tuple[Path, Path]:
    folder = root / CACHE_DIR
    return folder / f"images_{size.tag}.u8", folder / f"images_{size.tag}.json"


def fingerprint(dataset: CaptchaDataset) -> str:
    """A digest of every image file's index, size and modification time, in index order."""
    digest = hashlib.sha1()
    for index, name in enumerate(dataset.files):
        try:
            stat = os.stat(dataset.root / name)
        except FileNotFoundError:
            return "stale"
        digest.update(f"{index} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def open_cache(dataset: CaptchaDataset, size: ImageSize = DEFAULT_SIZE) -> ImageCache | None:
    """The cache if it exists and matches the images now on disk, else None."""
    data_path, index_path = cache_paths(dataset.root, size)
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        return None
    expected = {
        "version": FORMAT_VERSION,
        "count": dataset.image_count,
        "height": size.height,
        "width": size.width,
        "fingerprint": fingerprint(dataset),
    }
    if any(index.get(key) != value for key, value in expected.items()):
        return None
    cache = ImageCache(data_path, dataset.image_count, size)
    if not data_path.is_file() or data_path.stat().st_size != cache.count * cache.record_bytes:
        return None
    return cache


def ensure_cache(
    dataset: CaptchaDataset, size: ImageSize = DEFAULT_SIZE, workers: int | None = None, progress: bool = True
) -> ImageCache:
    """Reuse a valid cache; build it otherwise."""
    return open_cache(dataset, size) or build_cache(dataset, size, workers, progress, checked=True)


def build_cache(
    dataset: CaptchaDataset,
    size: ImageSize = DEFAULT_SIZE,
    workers: int | None = None,
    progress: bool = True,
    force: bool = False,
    checked: bool = False,
) -> ImageCache:
    """Build the cache (again, with `force`), unless a valid one exists (`checked`: the caller just found none).

    One builder at a time per cache: a second process waits for the first and then uses what it built (with
    `force` too: the images it was asked to cache were cached while it waited). The data goes into a temporary
    file of this process's own, renamed into place when complete; the index follows, so readers never see a
    half-built cache."""
    if not force and not checked and (cache := open_cache(dataset, size)) is not None:
        return cache
    data_path, _ = cache_paths(dataset.root, size)
    with folder_lock(data_path.parent, f"building {data_path.name}", name=f"{data_path.stem}.lock") as waited:
        if waited and (cache := open_cache(dataset, size)) is not None:
            return cache
        remove_dead_temps(data_path.parent)
        return _build_locked(dataset, size, workers, progress)


def _build_locked(dataset: CaptchaDataset, size: ImageSize, workers: int | None, progress: bool) -> ImageCache:
    data_path, index_path = cache_paths(dataset.root, size)
    index_path.unlink(missing_ok=True)
    stamp = fingerprint(dataset)
    temp = temp_path(data_path)
    try:
        cache = ImageCache(temp, dataset.image_count, size)
        array = np.memmap(temp, dtype=np.uint8, mode="w+", shape=cache.shape)
        resized = _fill(array, dataset, size, workers or os.cpu_count() or 1, progress)
        array.flush()
        del array
        publish(temp, data_path, durable=False)
    finally:
        temp.unlink(missing_ok=True)
    if resized:
        print(f"note: {resized:,} images were not 600x320 and were resized like the rest", file=sys.stderr)
    index = {
        "version": FORMAT_VERSION,
        "count": dataset.image_count,
        "height": size.height,
        "width": size.width,
        "fingerprint": stamp,
    }
    write_text_atomically(index_path, json.dumps(index, indent=1) + "\n")
    return ImageCache(data_path, dataset.image_count, size)


@dataclass(frozen=True)
class _Chunk:
    start: int
    paths: tuple[str, ...]
    size: ImageSize
    expected: tuple[int, int] | None  # the size every image should have, or None: any size is usual


def _decode_chunk(chunk: _Chunk) -> tuple[int, np.ndarray, int]:
    images = np.empty((len(chunk.paths), chunk.size.height, chunk.size.width, 3), dtype=np.uint8)
    odd_sized = 0
    for row, path in enumerate(chunk.paths):
        image = load_image(path)
        odd_sized += chunk.expected is not None and image.size != chunk.expected
        images[row] = to_model_input(image, chunk.size)
    return chunk.start, images, odd_sized


def _fill(array: np.ndarray, dataset: CaptchaDataset, size: ImageSize, workers: int, progress: bool) -> int:
    step = 256
    expected = (600, 320) if dataset.is_words_layout else None
    chunks = [
        _Chunk(start, tuple(str(dataset.image_path(i)) for i in range(start, min(start + step, dataset.image_count))),
               size, expected)
        for start in range(0, dataset.image_count, step)
    ]  # fmt: skip
    odd_sized = 0
    with progress_bar(enabled=progress, total=dataset.image_count, desc=f"cache {size.tag}", unit="img") as bar:
        with _mapper(workers) as mapped:
            for start, images, odd in mapped(_decode_chunk, chunks):
                array[start : start + len(images)] = images
                odd_sized += odd
                bar.update(len(images))
    return odd_sized


@contextmanager
def _mapper(workers: int) -> Iterator[Callable]:
    """`map` in this process for one worker, else a process pool's unordered map."""
    if workers == 1:
        yield map
        return
    with Pool(workers) as pool:
        yield pool.imap_unordered
