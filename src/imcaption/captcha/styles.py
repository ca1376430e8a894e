"""How synthetic captchas look: `CaptchaStyle`, the named styles (faithful, v1, wide, universal and
unseen-faces), and the two choices a
style makes for each image before its letters are drawn: which style the image is drawn in (a mixing style draws
a share of its images in the faithful one) and which face.

drawing.py draws an image in a style; generator.py writes a folder of them. A style's fields are recorded in the
dataset manifest, so a change to what a style draws is a change of GENERATOR_VERSION (generator.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from imcaption.captcha.face_list import FaceSplit, face_list, family_weights, is_known_face, split_faces
from imcaption.captcha.fonts import FACES
from imcaption.captcha.variation import LetterVariation

__all__ = [
    "FAITHFUL_STYLE",
    "STYLES",
    "UNIVERSAL_STYLE",
    "UNSEEN_FACES_STYLE",
    "V1_STYLE",
    "WIDE_STYLE",
    "CaptchaStyle",
    "check_style",
    "image_style",
    "pick_face",
    "universal_face_split",
]


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
    # Stroke weight, slant, elastic distortion and a bent baseline, drawn for each image (variation.py); None
    # draws letters as the face has them (faithful, v1, wide).
    variation: LetterVariation | None = None


# The default everywhere a style is optional; its fields' defaults are the faithful style.
FAITHFUL_STYLE = CaptchaStyle()
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
    face_weights=tuple(4.0 if face in FAITHFUL_STYLE.faces else 1.0 for face in FACES),
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


# For a reader of captchas it was never trained on: the hundreds of legible faces of the face list (face_list.py),
# each family weighted as the real classes are (plain sans about half), letters varied beyond the face
# (variation.py), noise strokes of the wide style's counts and widths. A quarter of the images are drawn in the
# faithful style, as the wide style does with half, so that the real-looking images stay common. The held-out
# fifth of the faces (never any of the faithful style's four) is never drawn: it is the unseen-faces style's.
def universal_face_split() -> FaceSplit:
    """The face list's kept faces split into the universal style's and the unseen-faces style's; the faithful
    style's faces are never held out."""
    protected = {FACES[face].distribution for face in FAITHFUL_STYLE.faces}
    return split_faces(face_list().kept, protected=protected)


def _universal_styles() -> tuple[CaptchaStyle, CaptchaStyle]:
    split = universal_face_split()

    def faces_and_weights(names: tuple[str, ...]) -> dict:
        wanted = set(names)
        faces = [face for face in face_list().kept if face.name in wanted]
        return {"faces": tuple(face.name for face in faces), "face_weights": family_weights(faces)}

    universal = CaptchaStyle(
        name="universal",
        **faces_and_weights(split.training),
        font_size=(64, 130),
        letter_size_jitter=0.18,
        max_rotation_deg=12.0,
        max_vertical_offset=16,
        letter_gap=(-6, 64),
        strokes=(6, 30),
        stroke_width=(1, 7),
        stroke_kinds=(0.45, 0.25, 0.12, 0.18),
        stroke_exit_rate=0.2,
        speckle_density=(0.0, 0.02),
        faithful_share=0.25,
        variation=LetterVariation(),
    )
    # The validation set of faces the universal style never draws: the held-out fifth, weighted by family the
    # same way, with no faithful share (the faithful faces are all trained ones).
    unseen = replace(universal, name="unseen-faces", **faces_and_weights(split.held_out), faithful_share=0.0)
    return universal, unseen


UNIVERSAL_STYLE, UNSEEN_FACES_STYLE = _universal_styles()
STYLES = {style.name: style for style in (FAITHFUL_STYLE, V1_STYLE, WIDE_STYLE, UNIVERSAL_STYLE, UNSEEN_FACES_STYLE)}


def check_style(style: CaptchaStyle) -> None:
    """Refuse a style that cannot draw: unknown faces, weights that do not match them, an unknown stroke model."""
    unknown = [face for face in style.faces if not is_known_face(face)]
    if unknown or not style.faces:
        raise ValueError(f"unknown faces {unknown or '(none given)'}; known: {', '.join(FACES)} and the "
                         f"{len(face_list().kept)} faces of the face list (face_list.py)")  # fmt: skip
    if style.face_weights is not None and len(style.face_weights) != len(style.faces):
        raise ValueError(f"{len(style.face_weights)} face weights for {len(style.faces)} faces")
    if style.stroke_model not in ("inside", "v1"):
        raise ValueError(f"unknown stroke model {style.stroke_model!r}; choose inside or v1")
    if not 0.0 <= style.faithful_share <= 1.0:
        raise ValueError(f"faithful_share is a share of the images, from 0 to 1; got {style.faithful_share}")


def image_style(rng: np.random.Generator, style: CaptchaStyle) -> CaptchaStyle:
    """The style one image is drawn in: `style`, or for a mixing style's share of images the faithful one at
    `style`'s size. The share is drawn from the image's generator only where the style mixes, so that other
    styles' images stay byte-identical."""
    if style.faithful_share and rng.random() < style.faithful_share:
        return replace(FAITHFUL_STYLE, width=style.width, height=style.height)
    return style


def pick_face(rng: np.random.Generator, style: CaptchaStyle) -> str:
    """The face of one image, drawn from its generator by the style's weights."""
    if style.face_weights is None:  # the v1 draw, kept so that v1 images stay byte-identical
        return style.faces[int(rng.integers(len(style.faces)))]
    weights = np.asarray(style.face_weights, dtype=float)
    return style.faces[int(rng.choice(len(style.faces), p=weights / weights.sum()))]
