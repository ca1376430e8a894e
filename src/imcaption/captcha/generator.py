"""Generating a folder of synthetic word captchas that imitate the real `words_captcha` images: the images
(a0.png ...), drawn by a process pool, their label files and the manifest; styles.py says how they look and
drawing.py draws each one.

Every image is a pure function of (seed, index, style) (drawing.py), so the output does not depend on how the
indices are spread over worker processes.

A generated folder carries a manifest, imcaption.json (generator version, seed, count, vocabulary hash, style, and
for a style drawn from the universal face list the list's hash),
written before the first image with "complete": false and rewritten with "complete": true after the last image
and the label files. A rerun with the same settings fills in what is missing; other settings, or a folder that
holds label files or images without a manifest (a real dataset), are refused and nothing is overwritten.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import imagecodecs
import numpy as np
from PIL import Image

from imcaption.captcha.dataset import LABEL_FILE, TEST_LABEL_FILE
from imcaption.captcha.drawing import FontCache, face_for_index, render_index, word_for_index
from imcaption.captcha.face_list import face_list, face_spec
from imcaption.captcha.fonts import FACES, missing_packages
from imcaption.captcha.labels import LabelRow, write_labels
from imcaption.captcha.styles import FAITHFUL_STYLE, STYLES, V1_STYLE, WIDE_STYLE, CaptchaStyle, check_style
from imcaption.engine.progress import progress_bar
from imcaption.files import TEMP_SUFFIX, remove_dead_temps
from imcaption.locks import folder_lock
from imcaption.manifest import check_claimable, claim_folder, mark_complete

# The styles and the drawing were defined here before the generator was split by job; these names stay importable
# from this module for the code that imports them from here.
__all__ = [
    "FAITHFUL_STYLE",
    "GENERATOR_VERSION",
    "MANIFEST_KIND",
    "STYLES",
    "TEMP_SUFFIX",
    "V1_STYLE",
    "WIDE_STYLE",
    "CaptchaStyle",
    "FontCache",
    "check_style",
    "dataset_manifest",
    "encode_png",
    "face_for_index",
    "generate_dataset",
    "labeled_count",
    "render_index",
    "save_png_atomically",
    "word_for_index",
]

MANIFEST_KIND = "imcaption-captcha-dataset"
# Raise when the same (seed, index) would draw another image: a change in drawing.py or in a style of styles.py.
GENERATOR_VERSION = 1


def encode_png(image: Image.Image) -> bytes:
    """8-bit RGB PNG. A fixed Sub filter instead of choosing one per row (what Pillow does) makes encoding,
    the largest cost of generation, much faster for slightly larger files; the pixels are the same."""
    pixels = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))  # no copy in the usual case
    return imagecodecs.png_encode(pixels, level=1, filter=imagecodecs.PNG.FILTER.SUB)


def save_png_atomically(image: Image.Image, path: Path) -> None:
    """Write to a temporary name of this process's own, then rename: an interrupt never leaves a half-written PNG."""
    temp = path.parent / f".{path.name}.{os.getpid()}.png{TEMP_SUFFIX}"
    temp.write_bytes(encode_png(image))
    os.replace(temp, path)


@dataclass(frozen=True)
class _Chunk:
    out_dir: str
    seed: int
    indices: tuple[int, ...]
    vocabulary: tuple[str, ...]
    style: CaptchaStyle


@functools.cache
def _process_fonts(pid: int) -> FontCache:
    """One font cache per process, so fonts load once per worker rather than once per chunk. Keyed by pid:
    a forked worker must not share the parent's open font files (and their file offsets)."""
    return FontCache()


def _render_chunk(chunk: _Chunk) -> int:
    fonts = _process_fonts(os.getpid())
    for index in chunk.indices:
        rendered = render_index(chunk.vocabulary, chunk.seed, index, fonts, chunk.style)
        save_png_atomically(rendered.image, Path(chunk.out_dir) / f"a{index}.png")
    return len(chunk.indices)


def labeled_count(count: int) -> int:
    """How many images get a label in spec_train_val.txt: the first 6/7, as in the real dataset."""
    return count * 6 // 7


def _chunks(indices: list[int], size: int) -> Iterator[tuple[int, ...]]:
    for start in range(0, len(indices), size):
        yield tuple(indices[start : start + size])


def dataset_manifest(vocabulary: Sequence[str], count: int, seed: int, style: CaptchaStyle) -> dict:
    """Everything that decides the files of a generated set, as JSON values."""
    words = hashlib.sha256("\n".join(vocabulary).encode()).hexdigest()
    drawn_with = dataclasses.asdict(style)
    # Recorded where used, so that manifests written before these fields existed still match.
    if not style.faithful_share:
        del drawn_with["faithful_share"]
    if style.variation is None:
        del drawn_with["variation"]
    settings = {"kind": MANIFEST_KIND, "generator_version": GENERATOR_VERSION, "seed": seed, "count": count,
                "vocabulary_sha256": words, "style": drawn_with}  # fmt: skip
    if any(face not in FACES for face in style.faces):  # the listed faces' files, weights and verdicts
        settings["face_list_sha256"] = face_list().sha256
    return json.loads(json.dumps(settings))  # tuples as lists, as they read back


def generate_dataset(
    out_dir: str | Path,
    vocabulary: Sequence[str],
    count: int = 140_000,
    seed: int = 0,
    workers: int | None = None,
    style: CaptchaStyle = FAITHFUL_STYLE,
    progress: bool = True,
) -> int:
    """Write a0.png ... a{count-1}.png, then the label files, then the manifest marked complete; return how
    many images were newly drawn. A rerun after an interrupt only fills the gaps."""
    if count < 7:
        raise ValueError(f"--count must be at least 7 (one image per split), got {count}")
    check_style(style)
    missing_packages({face: face_spec(face) for face in style.faces})  # before any image, not at the first one
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Refused before the lock file is made: a folder that holds another dataset is left exactly as it was.
    check_claimable(out, dataset_manifest(vocabulary, count, seed, style), foreign=_holds_a_dataset(out))
    # A second generator into the same folder waits, then finds the images drawn (same settings) or is refused.
    with folder_lock(out, "generating captchas"):
        return _generate_locked(out, vocabulary, count, seed, workers, style, progress)


def _generate_locked(out: Path, vocabulary: Sequence[str], count: int, seed: int, workers: int | None,
                     style: CaptchaStyle, progress: bool) -> int:  # fmt: skip
    wanted = dataset_manifest(vocabulary, count, seed, style)
    claim_folder(out, wanted, foreign=_holds_a_dataset(out))
    remove_dead_temps(out)
    existing = {entry.name for entry in os.scandir(out)}
    missing = [i for i in range(count) if f"a{i}.png" not in existing]
    if missing:
        _render_missing(out, vocabulary, seed, missing, workers or os.cpu_count() or 1, style, progress)
    _write_label_files(out, vocabulary, count, seed)
    mark_complete(out, wanted)
    return len(missing)


def _holds_a_dataset(out: Path) -> bool:
    return (out / LABEL_FILE).exists() or (out / TEST_LABEL_FILE).exists() or any(out.glob("a*.png"))


def _write_label_files(out: Path, vocabulary: Sequence[str], count: int, seed: int) -> None:
    rows = [LabelRow(i, word_for_index(vocabulary, seed, i)) for i in range(count)]
    split = labeled_count(count)
    write_labels(out / "spec_train_val.txt", rows[:split])
    write_labels(out / "test_labels.txt", rows[split:])


def _render_missing(
    out: Path,
    vocabulary: Sequence[str],
    seed: int,
    missing: list[int],
    workers: int,
    style: CaptchaStyle,
    progress: bool,
) -> None:
    chunks = [_Chunk(str(out), seed, c, tuple(vocabulary), style) for c in _chunks(missing, 64)]
    bar = progress_bar(enabled=progress, total=len(missing), desc="generate", unit="img", smoothing=0.05)
    with bar:
        if workers == 1:
            for chunk in chunks:
                bar.update(_render_chunk(chunk))
            return
        with Pool(workers) as pool:
            for done in pool.imap_unordered(_render_chunk, chunks):
                bar.update(done)
