"""The universal style's faces, as data: universal_faces.json lists every candidate face of the font packages in
face_sources.py with the legibility check's verdict (face_check.py), the package and version that ships its file,
its family and, for variable fonts, its weight; face_build.py recomputes the file.

Here: reading the list (with the hash the dataset manifest records), finding any face by name (the named faces of
fonts.py and the listed ones), weighting faces by family, and the face-level split that keeps a seeded fifth of
the faces out of training for the unseen-faces validation set.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, fields
from importlib import resources

import numpy as np

from imcaption.captcha.fonts import FACES, FontFace

__all__ = [
    "FACE_LIST_FILE",
    "FAMILY_SHARES",
    "HELD_OUT_SHARE",
    "UNIVERSAL_FAMILIES",
    "FaceList",
    "FaceSplit",
    "ListedFace",
    "face_list",
    "face_spec",
    "family_weights",
    "is_known_face",
    "split_faces",
]

FACE_LIST_FILE = "universal_faces.json"
UNIVERSAL_FAMILIES = ("sans", "serif", "slab", "mono", "hand", "script", "calligraphic", "display")
# The share of images each family is drawn in. The faithful style weighs its four real classes 3:1:1:1 (plain sans
# half, felt marker, connected script and calligraphic script a sixth each); the universal style keeps those
# shares for the real families, less an eighth of the images for the families real captchas were not seen in.
FAMILY_SHARES = {
    "sans": 0.44,
    "hand": 0.145,
    "script": 0.145,
    "calligraphic": 0.145,
    "serif": 0.04,
    "slab": 0.03,
    "mono": 0.025,
    "display": 0.03,
}
# The real families: never held out whole, so that training sees each of them.
REAL_FAMILIES = ("sans", "hand", "script", "calligraphic")
HELD_OUT_SHARE = 0.2
HELD_OUT_SEED = 0  # the split belongs to the face list, like a dataset's split: one for every generation seed


@dataclass(frozen=True)
class ListedFace:
    """One candidate face: a font file (at one weight, for a variable font) and the check's verdict."""

    name: str  # package slug, file stem and, for a variable font, @weight: "lora:Lora-Italic[wght]@400"
    distribution: str  # the PyPI package that ships the file
    version: str  # its pinned version (pyproject.toml's faces or generate extra)
    filename: str
    typeface: str  # the design's family name in the font file: "Lora"
    style: str  # the font file's style name: "Light Italic"; a variable font's default instance's
    family: str  # one of UNIVERSAL_FAMILIES
    weight: int | None  # the weight axis value of a variable font; None for a static file
    licence: str  # the package metadata's licence (License-Expression, License or classifier)
    refused: str = ""  # the legibility check's reason; "" for a kept face

    @property
    def label(self) -> str:
        """How people name the face: "Lora 400 Italic", "Zilla Slab Light Italic"."""
        if self.weight is None:
            return f"{self.typeface} {self.style}"
        italic = " Italic" if "italic" in self.style.lower() else ""
        return f"{self.typeface} {self.weight}{italic}"

    def font_face(self) -> FontFace:
        return FontFace(self.distribution, self.filename, self.family, self.weight, extra="faces")


@dataclass(frozen=True)
class FaceList:
    check_version: int  # face_check.FACE_CHECK_VERSION when the verdicts were computed
    faces: tuple[ListedFace, ...]  # every candidate, kept or refused

    @property
    def kept(self) -> tuple[ListedFace, ...]:
        return tuple(face for face in self.faces if not face.refused)

    @property
    def sha256(self) -> str:
        """The hash a dataset manifest records: of the kept faces, which decide what is drawn."""
        kept = [asdict(face) for face in self.kept]
        return hashlib.sha256(json.dumps([self.check_version, kept], sort_keys=True).encode()).hexdigest()

    @functools.cached_property
    def by_name(self) -> dict[str, ListedFace]:
        """The kept faces by name (computed once: every font load looks a face up)."""
        return {face.name: face for face in self.kept}

    def to_json(self) -> str:
        """One face a line, so that a change to the list reads as a change of lines."""
        lines = ",\n".join(json.dumps(asdict(face), ensure_ascii=False) for face in self.faces)
        return f'{{"check_version": {self.check_version}, "faces": [\n{lines}\n]}}\n'

    @classmethod
    def from_json(cls, text: str) -> FaceList:
        data = json.loads(text)
        known = {field.name for field in fields(ListedFace)}
        faces = tuple(ListedFace(**{k: v for k, v in face.items() if k in known}) for face in data["faces"])
        return cls(data["check_version"], faces)


@functools.cache
def face_list() -> FaceList:
    """The stored face list (read once per process: it is package data and never changes at run time)."""
    return FaceList.from_json((resources.files("imcaption") / "captcha" / FACE_LIST_FILE).read_text("utf-8"))


def face_spec(name: str) -> FontFace:
    """Any face by name: the named faces of fonts.py, then the kept faces of the list."""
    if name in FACES:
        return FACES[name]
    listed = face_list().by_name.get(name)
    if listed is None:
        raise KeyError(f"unknown face {name!r}")
    return listed.font_face()


def is_known_face(name: str) -> bool:
    return name in FACES or name in face_list().by_name


def family_weights(faces: Sequence[ListedFace], shares: dict[str, float] = FAMILY_SHARES) -> tuple[float, ...]:
    """Each face's weight: its family's share, split evenly over the family's typefaces (packages), then evenly
    over a typeface's faces, so that a package with ten weights counts as one design, not ten."""
    typefaces: dict[str, set[str]] = defaultdict(set)
    faces_of: dict[str, int] = defaultdict(int)
    for face in faces:
        typefaces[face.family].add(face.distribution)
        faces_of[face.distribution] += 1
    return tuple(shares[face.family] / len(typefaces[face.family]) / faces_of[face.distribution] for face in faces)


@dataclass(frozen=True)
class FaceSplit:
    training: tuple[str, ...]  # face names, in list order
    held_out: tuple[str, ...]
    whole_families: tuple[str, ...]  # families held out entirely; the rest of held_out are whole typefaces


def split_faces(
    faces: Sequence[ListedFace],
    protected: Collection[str] = (),
    share: float = HELD_OUT_SHARE,
    seed: int = HELD_OUT_SEED,
) -> FaceSplit:
    """About `share` of the faces held out of training, drawn with `seed`: one whole family (of the minor ones,
    small enough to take at most half the share), then whole typefaces (packages) from every other family, each
    family giving about its part of the rest and one typeface at least. A held-out face is never a weight or an
    italic of a trained design. Typefaces of the `protected` packages (the faithful style's) are never held out,
    and each family keeps at least one typeface in training."""
    rng = np.random.default_rng(seed)
    budget = round(share * len(faces))
    families: dict[str, list[ListedFace]] = defaultdict(list)
    for face in faces:
        families[face.family].append(face)
    minor = [family for family in UNIVERSAL_FAMILIES if family not in REAL_FAMILIES and families[family]
             and len(families[family]) <= budget / 2
             and not any(face.distribution in protected for face in families[family])]  # fmt: skip
    whole = [minor[int(rng.integers(len(minor)))]] if minor else []
    held = {face.name for family in whole for face in families[family]}
    rest = [family for family in UNIVERSAL_FAMILIES if family not in whole and families[family]]
    rest_count = sum(len(families[family]) for family in rest)
    for family in rest:
        # Each family's part of what is left, and one typeface at least: every family is read unseen.
        quota = max(1, round((budget - len(held)) * len(families[family]) / rest_count))
        held |= _whole_typefaces(families[family], quota, protected, rng)
        rest_count -= len(families[family])
    return FaceSplit(
        training=tuple(face.name for face in faces if face.name not in held),
        held_out=tuple(face.name for face in faces if face.name in held),
        whole_families=tuple(whole),
    )


def _whole_typefaces(
    faces: list[ListedFace], quota: int, protected: Collection[str], rng: np.random.Generator
) -> set[str]:
    """Whole typefaces of one family, in a seeded order, while they fit in `quota` faces (at least one typeface
    where the quota is not zero), leaving one typeface at least in training."""
    typefaces: dict[str, list[str]] = defaultdict(list)
    for face in faces:
        typefaces[face.distribution].append(face.name)
    candidates = sorted(name for name in typefaces if name not in protected)
    order = [candidates[i] for i in rng.permutation(len(candidates))]
    held: list[str] = []
    taken = 0
    for typeface in order:
        if len(typefaces) - len(held) <= 1 or taken >= quota:
            break
        if taken + len(typefaces[typeface]) <= quota:
            held.append(typeface)
            taken += len(typefaces[typeface])
    if quota and not held and order and len(typefaces) > 1:  # every typeface is larger than the quota
        held.append(min(order, key=lambda typeface: len(typefaces[typeface])))
    return {name for typeface in held for name in typefaces[typeface]}
