"""The four captcha faces, shipped by PyPI font packages."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from PIL import ImageFont


@dataclass(frozen=True)
class FontFace:
    name: str
    package: str
    filename: str
    # Variable fonts take a weight; None for static faces.
    weight: int | None = None


CAPTCHA_FACES: tuple[FontFace, ...] = (
    FontFace("brush-script", "fontpkg_oleo_script", "OleoScript-Bold.ttf"),
    FontFace("handwriting", "font_intuitive", "Intuitive.ttf"),
    FontFace("rounded-heavy", "font_fredoka_one", "FredokaOne-Regular.ttf"),
    FontFace("italic-hand", "fontpkg_dancing_script", "DancingScript[wght].ttf", weight=700),
)


def font_path(face: FontFace) -> str:
    return str(resources.files(face.package) / "files" / face.filename)


def load_font(face: FontFace, size: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.truetype(font_path(face), size)
    if face.weight is not None:
        font.set_variation_by_axes([face.weight])
    return font
