"""Synthetic word captchas that imitate the real `words_captcha` images.

Every image is a pure function of (seed, index): its own NumPy generator is seeded with both, so the
output does not depend on how the indices are spread over worker processes.

A generated folder carries a manifest, imcaption.json (generator version, seed, count, vocabulary hash, style),
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
from dataclasses import dataclass, replace
from multiprocessing import Pool
from pathlib import Path

import imagecodecs
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from imcaption.captcha.dataset import LABEL_FILE, TEST_LABEL_FILE
from imcaption.captcha.fonts import FACES, load_font
from imcaption.captcha.labels import LabelRow, write_labels
from imcaption.engine.progress import progress_bar
from imcaption.files import TEMP_SUFFIX, remove_dead_temps
from imcaption.locks import folder_lock
from imcaption.manifest import check_claimable, claim_folder, mark_complete

MANIFEST_KIND = "imcaption-captcha-dataset"
GENERATOR_VERSION = 1  # raise when the same (seed, index) would draw another image


@dataclass(frozen=True)
class CaptchaStyle:
    """How captchas are drawn. The defaults are the faithful style: each field imitates a property of the real
    words_captcha images, as seen side by side with real samples (the official one is a8.png) and measured by
    the likeness statistics in BENCHMARKS.md."""

    name: str = "faithful"
    # Real images are 600 x 320 8-bit RGB on white.
    width: int = 600
    height: int = 320
    # The four real face classes: about half the real images use a plain regular-weight sans; the rest share a
    # thin felt-marker hand, a connected italic script and a calligraphic script (a8.png).
    faces: tuple[str, ...] = ("sans", "marker", "connected-script", "calligraphic")
    # Relative frequency of each face; None draws them uniformly (the v1 style).
    face_weights: tuple[float, ...] | None = (3.0, 1.0, 1.0, 1.0)
    # Em size in px: real letters are about 60-90 px tall for an ascender, a lowercase x about 40 px (a8.png).
    font_size: tuple[int, int] = (80, 120)
    # Letters of one word differ a little in size.
    letter_size_jitter: float = 0.1
    # Real letters stand nearly upright.
    max_rotation_deg: float = 8.0
    # Small vertical offsets between letters.
    max_vertical_offset: int = 14
    # Irregular spacing, sometimes a gap as wide as a letter.
    letter_gap: tuple[int, int] = (4, 64)
    # The word sits anywhere, sometimes within a few pixels of the border.
    margin: int = 3
    # Real images carry 10-25 noise strokes; from 12 up, the ink share comes closer to the real 11-13 %.
    strokes: tuple[int, int] = (12, 25)
    # Real strokes look 2-5 px thick; 3-5 gives a8.png's median stroke width (4 px) in likeness.py.
    stroke_width: tuple[int, int] = (3, 5)
    # "inside": segments, partial arcs, a few ellipses and dashes, ending inside the image (real border-band ink
    # is about a fifth of v1's); "v1": imcaption 0.1's strokes, which run off the image.
    stroke_model: str = "inside"
    # Shares of straight segments, partial arcs, closed ellipses and short dashes: mostly segments in real images.
    stroke_kinds: tuple[float, float, float, float] = (0.55, 0.25, 0.07, 0.13)
    # Share of strokes that may leave the image anyway (a few real ones touch the border).
    stroke_exit_rate: float = 0.1
    # Sparse single-pixel dots of random colors: about 75 isolated dots per 10,000 px in a8.png.
    speckle_density: tuple[float, float] = (0.0055, 0.0135)
    # Colors brighter than this luminance would vanish into the white background.
    max_luminance: float = 200.0
    noise: bool = True
    # Share of the images drawn in the faithful default style instead: a broad style keeps the real-looking images
    # common, so what it adds costs a model trained on it little on them. 0 for the faithful and v1 styles.
    faithful_share: float = 0.0


V1_STYLE = CaptchaStyle(
    name="v1",
    faces=("brush-script", "handwriting", "rounded-heavy", "italic-hand"),
    face_weights=None,
    font_size=(80, 140),
    letter_size_jitter=0.15,
    max_rotation_deg=15.0,
    max_vertical_offset=18,
    letter_gap=(2, 34),
    margin=8,
    strokes=(10, 25),
    stroke_width=(2, 6),
    stroke_model="v1",
    speckle_density=(0.006, 0.015),
)
# For a model meant to read captchas it was not trained on: every face of every family, and wider noise, in half
# of the images; the other half are drawn in the faithful style. Drawn alone, at the same training steps, the broad
# half left a model far behind the faithful one on faithful images (bench/results/captcha_styles_unmixed.json).
# Within the broad half the four faces of the real classes weigh 4 each.
WIDE_STYLE = CaptchaStyle(
    name="wide",
    faces=tuple(FACES),
    face_weights=tuple(4.0 if face in CaptchaStyle().faces else 1.0 for face in FACES),
    font_size=(64, 140),
    letter_size_jitter=0.15,
    max_rotation_deg=15.0,
    max_vertical_offset=20,
    letter_gap=(0, 72),
    strokes=(6, 30),
    stroke_width=(1, 7),
    stroke_kinds=(0.45, 0.25, 0.12, 0.18),
    stroke_exit_rate=0.3,
    speckle_density=(0.0, 0.02),
    faithful_share=0.5,
)
STYLES = {style.name: style for style in (CaptchaStyle(), V1_STYLE, WIDE_STYLE)}


def check_style(style: CaptchaStyle) -> None:
    """Refuse a style that cannot draw: unknown faces, weights that do not match them, an unknown stroke model."""
    unknown = [face for face in style.faces if face not in FACES]
    if unknown or not style.faces:
        raise ValueError(f"unknown faces {unknown or '(none given)'}; known: {', '.join(FACES)}")
    if style.face_weights is not None and len(style.face_weights) != len(style.faces):
        raise ValueError(f"{len(style.face_weights)} face weights for {len(style.faces)} faces")
    if style.stroke_model not in ("inside", "v1"):
        raise ValueError(f"unknown stroke model {style.stroke_model!r}; choose inside or v1")
    if not 0.0 <= style.faithful_share <= 1.0:
        raise ValueError(f"faithful_share is a share of the images, from 0 to 1; got {style.faithful_share}")


@dataclass
class RenderedCaptcha:
    image: Image.Image
    word: str
    face: str
    letter_boxes: list[tuple[int, int, int, int]]


class FontCache:
    """Loads each (face, size) once per process."""

    def __init__(self) -> None:
        self._fonts: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}

    def get(self, face: str, size: int) -> ImageFont.FreeTypeFont:
        key = (face, size)
        if key not in self._fonts:
            self._fonts[key] = load_font(face, size)
        return self._fonts[key]


def image_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index])


def word_for_index(vocabulary: Sequence[str], seed: int, index: int) -> str:
    """The word of image `index`; the first draw of that image's generator."""
    return vocabulary[int(image_rng(seed, index).integers(len(vocabulary)))]


def face_for_index(vocabulary: Sequence[str], seed: int, index: int, style: CaptchaStyle = CaptchaStyle()) -> str:
    """The face image `index` is drawn in, from the same draws render_index makes first (nothing is drawn)."""
    rng = image_rng(seed, index)
    rng.integers(len(vocabulary))  # the word
    if style.faithful_share and rng.random() < style.faithful_share:
        style = replace(CaptchaStyle(), width=style.width, height=style.height)
    return _pick_face(rng, style)


def random_color(rng: np.random.Generator, max_luminance: float) -> tuple[int, int, int]:
    while True:
        r, g, b = (int(v) for v in rng.integers(0, 256, size=3))
        if 0.299 * r + 0.587 * g + 0.114 * b <= max_luminance:
            return r, g, b


def _letter_mask(char: str, font: ImageFont.FreeTypeFont, angle: float) -> tuple[Image.Image, int]:
    """The letter's coverage mask, rotated and cropped to ink, and its ink top below the ascender line."""
    left, top, right, bottom = font.getbbox(char)
    pad = 4
    mask = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(mask).text((pad - left, pad - top), char, font=font, fill=255)
    mask = mask.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    box = mask.getbbox()
    if box is None:
        raise ValueError(f"font draws nothing for {char!r}")
    return mask.crop(box), top


def _layout_letters(
    word: str, face: str, rng: np.random.Generator, fonts: FontCache, style: CaptchaStyle
) -> tuple[list[Image.Image], list[int], list[int]]:
    base_size = int(rng.integers(style.font_size[0], style.font_size[1] + 1))
    jitters = rng.uniform(1 - style.letter_size_jitter, 1 + style.letter_size_jitter, size=len(word))
    angles = rng.uniform(-style.max_rotation_deg, style.max_rotation_deg, size=len(word))
    gaps = rng.integers(style.letter_gap[0], style.letter_gap[1] + 1, size=len(word) - 1)
    offsets = rng.integers(-style.max_vertical_offset, style.max_vertical_offset + 1, size=len(word))
    usable_width = style.width - 2 * style.margin
    usable_height = style.height - 2 * style.margin
    scale = 1.0
    # Shrink the whole word until it fits; long words in wide faces need it.
    while True:
        masks, tops = [], []
        for char, jitter, angle in zip(word, jitters, angles, strict=True):
            size = max(12, int(base_size * jitter * scale))
            mask, top = _letter_mask(char, fonts.get(face, size), float(angle))
            masks.append(mask)
            tops.append(int(top * scale) + int(offsets[len(masks) - 1] * scale))
        width = sum(m.width for m in masks) + int(sum(gaps) * scale)
        low = min(tops)
        height = max(t - low + m.height for t, m in zip(tops, masks, strict=True))
        if width <= usable_width and height <= usable_height:
            break
        scale *= 0.9
    scaled_gaps = [int(g * scale) for g in gaps]
    x0 = style.margin + int(rng.integers(0, usable_width - width + 1))
    y0 = style.margin + int(rng.integers(0, usable_height - height + 1))
    xs, ys = [], []
    x = x0
    for i, mask in enumerate(masks):
        xs.append(x)
        ys.append(y0 + tops[i] - low)
        x += mask.width + (scaled_gaps[i] if i < len(scaled_gaps) else 0)
    return masks, xs, ys


def _draw_stroke_v1(draw: ImageDraw.ImageDraw, rng: np.random.Generator, style: CaptchaStyle) -> None:
    """imcaption 0.1's strokes: long lines and large ellipses, many of them running off the image."""
    w, h = style.width, style.height
    color = random_color(rng, style.max_luminance)
    width = int(rng.integers(style.stroke_width[0], style.stroke_width[1] + 1))
    kind = rng.choice(4, p=[0.35, 0.3, 0.15, 0.2])
    if kind == 0:  # a long straight segment across most of the image
        y1, y2 = rng.uniform(-0.1 * h, 1.1 * h, size=2)
        x1, x2 = rng.uniform(-0.05 * w, 0.3 * w), rng.uniform(0.6 * w, 1.05 * w)
        if rng.random() < 0.5:
            x1, x2 = x2, x1
        draw.line([(x1, y1), (x2, y2)], fill=color, width=width)
    elif kind == 3:  # a short dash
        x1, y1 = rng.uniform(0, w), rng.uniform(0, h)
        length, angle = rng.uniform(15, 70), rng.uniform(0, np.pi)
        draw.line([(x1, y1), (x1 + length * np.cos(angle), y1 + length * np.sin(angle))], fill=color, width=width)
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(15, 0.5 * w), rng.uniform(10, 0.6 * h)
        box = [cx - rx, cy - ry, cx + rx, cy + ry]
        if kind == 2:  # a full ellipse
            draw.ellipse(box, outline=color, width=width)
        else:  # an arc, a partial ellipse
            start = rng.uniform(0, 360)
            draw.arc(box, start, start + rng.uniform(40, 300), fill=color, width=width)


def _clip_into(start: np.ndarray, end: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Shorten the segment start-end (start inside the box low-high) so that it ends inside the box."""
    direction = end - start
    reach = 1.0
    for axis in range(2):
        if end[axis] > high[axis]:
            reach = min(reach, (high[axis] - start[axis]) / direction[axis])
        elif end[axis] < low[axis]:
            reach = min(reach, (low[axis] - start[axis]) / direction[axis])
    return start + max(reach, 0.0) * direction


def _draw_stroke_inside(draw: ImageDraw.ImageDraw, rng: np.random.Generator, style: CaptchaStyle) -> None:
    """A real-looking noise stroke: it starts inside the image and, unless it is one of the few allowed to
    leave, ends inside too."""
    w, h = style.width, style.height
    color = random_color(rng, style.max_luminance)
    width = int(rng.integers(style.stroke_width[0], style.stroke_width[1] + 1))
    kind = int(rng.choice(4, p=np.asarray(style.stroke_kinds) / sum(style.stroke_kinds)))
    inset = 6 + width if rng.random() >= style.stroke_exit_rate else -40  # 6 px: the border band
    low, high = np.array([inset, inset], float), np.array([w - inset, h - inset], float)
    if kind in (0, 3):  # a straight segment across much of the image, or a short dash
        middle = rng.uniform(np.maximum(low, 0), np.minimum(high, [w, h]))
        length = rng.uniform(0.3, 1.0) * w if kind == 0 else rng.uniform(12, 60)
        # Real segments lean towards the horizontal; a quarter of them are steep.
        tilt = rng.uniform(-35, 35) if rng.random() < 0.75 else rng.uniform(35, 145)
        half = length / 2 * np.array([np.cos(np.radians(tilt)), np.sin(np.radians(tilt))])
        ends = [_clip_into(middle, middle + sign * half, low, high) for sign in (-1, 1)]
        draw.line([tuple(ends[0]), tuple(ends[1])], fill=color, width=width)
        return
    center = rng.uniform(np.maximum(low, 0) + 10, np.minimum(high, [w, h]) - 10)
    radii = rng.uniform([12, 10], [0.3 * w, 0.4 * h])
    radii = np.maximum(np.minimum(radii, np.minimum(center - low, high - center)), 4)  # keep it in the box
    box = [*(center - radii), *(center + radii)]
    if kind == 2:  # a closed ellipse, often narrow
        draw.ellipse(box, outline=color, width=width)
    else:  # a partial arc
        first = rng.uniform(0, 360)
        draw.arc(box, first, first + rng.uniform(40, 200), fill=color, width=width)


def _add_speckle(pixels: np.ndarray, rng: np.random.Generator, style: CaptchaStyle) -> None:
    density = rng.uniform(*style.speckle_density)
    count = int(density * style.width * style.height)
    ys = rng.integers(0, style.height, size=count)
    xs = rng.integers(0, style.width, size=count)
    pixels[ys, xs] = rng.integers(0, 256, size=(count, 3), dtype=np.uint8)


def render_captcha(
    word: str, rng: np.random.Generator, fonts: FontCache, style: CaptchaStyle = CaptchaStyle()
) -> RenderedCaptcha:
    """Draw `word`: one face, each letter its own color, size, tilt and offset; then noise on top."""
    # Drawn only where the style mixes, so that other styles' images stay byte-identical.
    if style.faithful_share and rng.random() < style.faithful_share:
        style = replace(CaptchaStyle(), width=style.width, height=style.height)
    face = _pick_face(rng, style)
    image = Image.new("RGB", (style.width, style.height), (255, 255, 255))
    masks, xs, ys = _layout_letters(word, face, rng, fonts, style)
    boxes = []
    for mask, x, y in zip(masks, xs, ys, strict=True):
        image.paste(random_color(rng, style.max_luminance), (x, y, x + mask.width, y + mask.height), mask)
        boxes.append((x, y, x + mask.width, y + mask.height))
    if style.noise:
        draw = ImageDraw.Draw(image)
        draw_stroke = _draw_stroke_v1 if style.stroke_model == "v1" else _draw_stroke_inside
        for _ in range(int(rng.integers(style.strokes[0], style.strokes[1] + 1))):
            draw_stroke(draw, rng, style)
        pixels = np.asarray(image).copy()
        _add_speckle(pixels, rng, style)
        image = Image.fromarray(pixels)
    return RenderedCaptcha(image, word, face, boxes)


def _pick_face(rng: np.random.Generator, style: CaptchaStyle) -> str:
    if style.face_weights is None:  # the v1 draw, kept so that v1 images stay byte-identical
        return style.faces[int(rng.integers(len(style.faces)))]
    weights = np.asarray(style.face_weights, dtype=float)
    return style.faces[int(rng.choice(len(style.faces), p=weights / weights.sum()))]


def render_index(
    vocabulary: Sequence[str], seed: int, index: int, fonts: FontCache, style: CaptchaStyle = CaptchaStyle()
) -> RenderedCaptcha:
    rng = image_rng(seed, index)
    word = vocabulary[int(rng.integers(len(vocabulary)))]
    return render_captcha(word, rng, fonts, style)


def encode_png(image: Image.Image) -> bytes:
    """8-bit RGB PNG. A fixed Sub filter instead of choosing one per row (what Pillow does) makes encoding
    about 3x faster, the largest cost of generation, for files about 5 % larger; the pixels are the same."""
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
    if not style.faithful_share:  # recorded where used, so that manifests written before the field still match
        del drawn_with["faithful_share"]
    settings = {"kind": MANIFEST_KIND, "generator_version": GENERATOR_VERSION, "seed": seed, "count": count,
                "vocabulary_sha256": words, "style": drawn_with}  # fmt: skip
    return json.loads(json.dumps(settings))  # tuples as lists, as they read back


def generate_dataset(
    out_dir: str | Path,
    vocabulary: Sequence[str],
    count: int = 140_000,
    seed: int = 0,
    workers: int | None = None,
    style: CaptchaStyle = CaptchaStyle(),
    progress: bool = True,
) -> int:
    """Write a0.png ... a{count-1}.png, then the label files, then the manifest marked complete; return how
    many images were newly drawn. A rerun after an interrupt only fills the gaps."""
    if count < 7:
        raise ValueError(f"--count must be at least 7 (one image per split), got {count}")
    check_style(style)
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
