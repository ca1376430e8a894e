"""The captcha faces, shipped by PyPI font packages, found without importing any of them.

Each face is named by what it looks like, with the family it belongs to; the styles in generator.py pick their
faces from here by name. The universal style's hundreds of faces are listed as data instead (face_list.py); both
kinds are opened here.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from PIL import ImageFont

from imcaption.extras import install_hint

FAMILIES = ("sans", "serif", "slab", "hand", "script")


@dataclass(frozen=True)
class FontFace:
    distribution: str  # the PyPI package that ships the file (pinned in pyproject.toml)
    filename: str
    family: str
    # Variable fonts: the value of the weight axis (400 regular, 700 bold); other axes keep their defaults.
    weight: int | None = None
    # The extra of pyproject.toml that installs the package: named when it is missing.
    extra: str = "generate"


FACES: dict[str, FontFace] = {
    # imcaption 0.1's four faces (`--style v1`): heavier and rounder than any real one.
    "brush-script": FontFace("fontpkg-oleo-script", "OleoScript-Bold.ttf", "script"),
    "handwriting": FontFace("font-intuitive", "Intuitive.ttf", "hand"),
    "rounded-heavy": FontFace("font-fredoka-one", "FredokaOne-Regular.ttf", "sans"),
    "italic-hand": FontFace("fontpkg-dancing-script", "DancingScript[wght].ttf", "script", weight=700),
    # The four real classes (the default style), chosen beside a8.png on contact sheets.
    "sans": FontFace("fontpkg-open-sans", "OpenSans[wdth,wght].ttf", "sans", weight=400),
    "marker": FontFace("fontpkg-shadows-into-light", "ShadowsIntoLight.ttf", "hand"),
    "connected-script": FontFace("fontpkg-dancing-script", "DancingScript[wght].ttf", "script", weight=400),
    "calligraphic": FontFace("fontpkg-satisfy", "Satisfy-Regular.ttf", "script"),
    # More of each family, for the wide style.
    "sans-pt": FontFace("fontpkg-pt-sans", "PT_Sans-Web-Regular.ttf", "sans"),
    "sans-roboto": FontFace("fontpkg-roboto", "Roboto[wdth,wght].ttf", "sans", weight=400),
    "sans-light": FontFace("fontpkg-open-sans", "OpenSans[wdth,wght].ttf", "sans", weight=300),
    "serif-pt": FontFace("fontpkg-pt-serif", "PT_Serif-Web-Regular.ttf", "serif"),
    "serif-lora": FontFace("fontpkg-lora", "Lora[wght].ttf", "serif", weight=400),
    "serif-italic": FontFace("fontpkg-pt-serif", "PT_Serif-Web-Italic.ttf", "serif"),
    "slab-roboto": FontFace("fontpkg-roboto-slab", "RobotoSlab[wght].ttf", "slab", weight=400),
    "slab-arvo": FontFace("fontpkg-arvo", "Arvo-Regular.ttf", "slab"),
    "slab-zilla": FontFace("fontpkg-zilla-slab", "ZillaSlab-Regular.ttf", "slab"),
    "hand-indie": FontFace("fontpkg-indie-flower", "IndieFlower-Regular.ttf", "hand"),
    "hand-kalam": FontFace("fontpkg-kalam", "Kalam-Light.ttf", "hand"),
    "hand-caveat": FontFace("fontpkg-caveat", "Caveat[wght].ttf", "hand", weight=400),
    "script-vibes": FontFace("fontpkg-great-vibes", "GreatVibes-Regular.ttf", "script"),
    "script-yellowtail": FontFace("fontpkg-yellowtail", "Yellowtail-Regular.ttf", "script"),
    "script-lobster": FontFace("fontpkg-lobster", "Lobster-Regular.ttf", "script"),
}


class FontMissingError(FileNotFoundError):
    """A face's package is not installed."""


def face_path(name: str, face: FontFace) -> Path:
    """The face's file, from its distribution's list of installed files: no package code runs to find it."""
    try:
        distribution = metadata.distribution(face.distribution)
    except metadata.PackageNotFoundError:
        raise FontMissingError(
            f"face {name!r} needs the package {face.distribution}, which is not installed; "
            + install_hint("generating captchas", face.extra)
        ) from None
    for file in distribution.files or []:
        if file.name == face.filename:
            return Path(str(distribution.locate_file(file)))
    raise FontMissingError(f"{face.distribution} does not contain {face.filename} (face {name!r}); reinstall it")


def missing_packages(faces: dict[str, FontFace]) -> None:
    """Raise FontMissingError naming every package of `faces` (name: face) that is not installed, and the extra
    that installs them; a style checks its faces so before it draws."""
    extras = {face.distribution: face.extra for face in faces.values()}
    missing: dict[str, str] = {}
    for distribution, extra in extras.items():
        try:
            metadata.distribution(distribution)
        except metadata.PackageNotFoundError:
            missing[distribution] = extra
    if missing:
        extras = sorted(set(missing.values()))
        raise FontMissingError(
            f"the style's faces need {len(missing)} packages that are not installed ({', '.join(sorted(missing))}); "
            + "; ".join(install_hint("generating captchas", extra) for extra in extras)
        )


def font_path(name: str) -> Path:
    return face_path(name, FACES[name])


def open_face(name: str, face: FontFace, size: int) -> ImageFont.FreeTypeFont:
    """The face at `size` px, its weight set where the file is a variable font."""
    font = ImageFont.truetype(str(face_path(name, face)), size)
    if face.weight is not None:
        axes = font.get_variation_axes()
        font.set_variation_by_axes([face.weight if a["name"] == b"Weight" else a["default"] for a in axes])
    return font


def load_font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return open_face(name, FACES[name], size)
