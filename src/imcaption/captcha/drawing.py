"""Drawing one synthetic captcha: its word, face, letters and noise, all from its own (seed, index) generator.

Every image is a pure function of (seed, index, style): its NumPy generator is seeded with seed and index, and
the draws are made in a fixed order (word, style share, face, layout, colors, strokes, speckle), so the output
does not depend on which process draws it. Changing that order, or what a draw decides, changes the images of
an existing dataset: raise GENERATOR_VERSION (generator.py) when you do.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from imcaption.captcha.face_list import face_spec
from imcaption.captcha.fonts import open_face
from imcaption.captcha.styles import FAITHFUL_STYLE, CaptchaStyle, image_style, pick_face
from imcaption.captcha.variation import LetterShape, draw_shapes, shape_letter

__all__ = [
    "FontCache",
    "RenderedCaptcha",
    "face_for_index",
    "image_rng",
    "random_color",
    "render_captcha",
    "render_index",
    "word_for_index",
]


@dataclass
class RenderedCaptcha:
    image: Image.Image
    word: str
    face: str
    letter_boxes: list[tuple[int, int, int, int]]


class FontCache:
    """Loads each (face, size) once per process, keeping the `capacity` most recently used: the faithful style's
    four faces at every size stay loaded, while the universal style's hundreds of faces at a hundred sizes each do
    not pile up (an open font costs about 170 KB: its file mapped and FreeType's state). What is drawn does not
    depend on what the cache holds."""

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._fonts: OrderedDict[tuple[str, int], ImageFont.FreeTypeFont] = OrderedDict()

    def get(self, face: str, size: int) -> ImageFont.FreeTypeFont:
        key = (face, size)
        if key in self._fonts:
            self._fonts.move_to_end(key)
            return self._fonts[key]
        font = self._fonts[key] = open_face(face, face_spec(face), size)
        if len(self._fonts) > self.capacity:
            self._fonts.popitem(last=False)
        return font


def image_rng(seed: int, index: int) -> np.random.Generator:
    """Image `index`'s own generator, seeded with the set's seed and the index: no other image shares it."""
    return np.random.default_rng([seed, index])


def word_for_index(vocabulary: Sequence[str], seed: int, index: int) -> str:
    """The word of image `index`; the first draw of that image's generator."""
    return vocabulary[int(image_rng(seed, index).integers(len(vocabulary)))]


def face_for_index(vocabulary: Sequence[str], seed: int, index: int, style: CaptchaStyle = FAITHFUL_STYLE) -> str:
    """The face image `index` is drawn in, from the same draws render_index makes first (nothing is drawn)."""
    rng = image_rng(seed, index)
    rng.integers(len(vocabulary))  # the word
    return pick_face(rng, image_style(rng, style))


def random_color(rng: np.random.Generator, max_luminance: float) -> tuple[int, int, int]:
    while True:
        r, g, b = (int(v) for v in rng.integers(0, 256, size=3))
        if 0.299 * r + 0.587 * g + 0.114 * b <= max_luminance:
            return r, g, b


def _letter_mask(
    char: str, font: ImageFont.FreeTypeFont, angle: float, shape: LetterShape | None = None
) -> tuple[Image.Image, int]:
    """The letter's coverage mask, shaped (for a style with variation), rotated and cropped to ink, and its ink
    top below the ascender line."""
    left, top, right, bottom = font.getbbox(char)
    pad = 4
    mask = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(mask).text((pad - left, pad - top), char, font=font, fill=255)
    if shape is not None:
        mask = shape_letter(mask, shape)
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
    shapes: list[LetterShape | None] = [None] * len(word)
    if style.variation is not None:  # drawn only here, so that styles without variation draw what they drew
        shapes[:], wave = draw_shapes(rng, style.variation, len(word))
        offsets = offsets + np.round(wave * base_size).astype(offsets.dtype)
    usable_width = style.width - 2 * style.margin
    usable_height = style.height - 2 * style.margin
    scale = 1.0
    # Shrink the whole word until it fits; long words in wide faces need it.
    while True:
        masks, tops = [], []
        for char, jitter, angle, shape in zip(word, jitters, angles, shapes, strict=True):
            size = max(12, int(base_size * jitter * scale))
            mask, top = _letter_mask(char, fonts.get(face, size), float(angle), shape)
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
    word: str, rng: np.random.Generator, fonts: FontCache, style: CaptchaStyle = FAITHFUL_STYLE
) -> RenderedCaptcha:
    """Draw `word`: one face, each letter its own color, size, tilt and offset; then noise on top."""
    style = image_style(rng, style)
    face = pick_face(rng, style)
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


def render_index(
    vocabulary: Sequence[str], seed: int, index: int, fonts: FontCache, style: CaptchaStyle = FAITHFUL_STYLE
) -> RenderedCaptcha:
    """Image `index` of the set drawn with `seed`: its word is its generator's first draw, then render_captcha's."""
    rng = image_rng(seed, index)
    word = vocabulary[int(rng.integers(len(vocabulary)))]
    return render_captcha(word, rng, fonts, style)
