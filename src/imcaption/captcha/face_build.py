"""Building and reporting the universal face list: every font file of the candidate packages (face_sources.py),
at the weights the style draws, through the legibility check (face_check.py), into universal_faces.json.

    python -m imcaption.captcha.face_build            # the stored list's kept and refused faces by family
    python -m imcaption.captcha.face_build --check    # rerun the check on the installed packages and compare
    python -m imcaption.captcha.face_build --write    # rerun it and rewrite universal_faces.json
    python -m imcaption.captcha.face_build --markdown docs/faces_universal.md

Which files are candidates: static files of weights 300 to 600 (light to semibold; real captcha letters are thin or
regular), italics included; variable files at the weights 300, 400 and 600 of their weight axis (clamped into
its range, duplicates dropped). A missing package is an error that names it.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from importlib import metadata, resources
from pathlib import Path

from PIL import ImageFont

from imcaption.captcha.face_check import EM, FACE_CHECK_VERSION, check_face
from imcaption.captcha.face_list import (
    FACE_LIST_FILE,
    FAMILY_SHARES,
    UNIVERSAL_FAMILIES,
    FaceList,
    FaceSplit,
    ListedFace,
    face_list,
)
from imcaption.captcha.face_sources import CANDIDATES, FacePackage
from imcaption.captcha.fonts import FontMissingError, open_face
from imcaption.captcha.styles import UNIVERSAL_STYLE, universal_face_split
from imcaption.extras import install_hint

__all__ = ["candidate_faces", "check_faces", "main", "markdown", "report"]

STATIC_WEIGHTS = range(300, 601)
VARIABLE_WEIGHTS = (300, 400, 600)
FONT_SUFFIXES = (".ttf", ".otf")
# Style-name words and the weights they stand for, longest first so that "semibold" is not read as "bold".
WEIGHT_WORDS = sorted(
    {"thin": 100, "hairline": 100, "extralight": 200, "ultralight": 200, "light": 300, "regular": 400, "book": 400,
     "normal": 400, "medium": 500, "semibold": 600, "demibold": 600, "bold": 700, "extrabold": 800,
     "ultrabold": 800, "black": 900, "heavy": 900}.items(),
    key=lambda item: -len(item[0]),
)  # fmt: skip


def style_weight(style: str) -> int:
    """The weight a static font's style name says: "SemiBold Italic" 600, "Italic" 400."""
    words = re.sub(r"[\s_-]", "", style.lower())
    return next((weight for word, weight in WEIGHT_WORDS if word in words), 400)


def licence(distribution: metadata.Distribution) -> str:
    """The package's own licence field: License-Expression, else License, else its licence classifier."""
    fields = distribution.metadata
    for key in ("License-Expression", "License"):
        if fields.get(key):
            return str(fields[key]).strip()
    classifiers = [c.split(" :: ")[-1] for c in fields.get_all("Classifier") or [] if c.startswith("License ::")]
    return "; ".join(classifiers) or "unknown"


def _installed(name: str, package: FacePackage) -> metadata.Distribution:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise FontMissingError(
            f"the face list needs the package {name}=={package.version}, which is not installed; "
            + install_hint("the universal style", "faces")
        ) from None


def _slug(distribution: str) -> str:
    return re.sub(r"^(fontpkg|font)-", "", distribution)


def _file_faces(name: str, package: FacePackage, distribution: metadata.Distribution, path: Path) -> list[ListedFace]:
    font = ImageFont.truetype(str(path), EM)
    typeface, style = font.getname()
    base = ListedFace(name=f"{_slug(name)}:{path.stem}", distribution=name, version=package.version,
                      filename=path.name, typeface=typeface or path.stem, style=style or "Regular",
                      family=package.family, weight=None, licence=licence(distribution))  # fmt: skip
    try:
        axes = font.get_variation_axes()
    except OSError:  # not a variable font
        axes = []
    weight_axes = [axis for axis in axes if axis["name"] == b"Weight"]
    if not weight_axes:
        return [base] if style_weight(base.style) in STATIC_WEIGHTS else []
    low, high = weight_axes[0]["minimum"], weight_axes[0]["maximum"]
    weights = sorted({min(max(weight, low), high) for weight in VARIABLE_WEIGHTS})
    return [replace(base, name=f"{base.name}@{weight}", weight=weight) for weight in weights]


def candidate_faces(candidates: dict[str, FacePackage] = CANDIDATES) -> list[ListedFace]:
    """Every candidate face of the installed candidate packages, in package and file order, not yet checked."""
    faces = []
    for name, package in sorted(candidates.items()):
        distribution = _installed(name, package)
        files = sorted((f for f in distribution.files or [] if f.name.lower().endswith(FONT_SUFFIXES)),
                       key=lambda f: f.name)  # fmt: skip
        for file in files:
            faces += _file_faces(name, package, distribution, Path(str(distribution.locate_file(file))))
    return faces


def check_faces(faces: Iterable[ListedFace]) -> list[ListedFace]:
    """The faces with the check's verdict, each opened as the style opens it (its weight set)."""
    return [replace(face, refused=check_face(open_face(face.name, face.font_face(), EM)).reason) for face in faces]


def report(faces: Sequence[ListedFace]) -> str:
    """Kept and refused faces (and typefaces) by family, and every refusal with its reason."""
    lines = [f"{'family':14}{'kept':>6}{'refused':>9}{'typefaces kept':>16}"]
    for family in UNIVERSAL_FAMILIES:
        mine = [face for face in faces if face.family == family]
        kept = [face for face in mine if not face.refused]
        typefaces = len({face.distribution for face in kept})
        lines.append(f"{family:14}{len(kept):>6}{len(mine) - len(kept):>9}{typefaces:>16}")
    kept = [face for face in faces if not face.refused]
    total_typefaces = len({face.distribution for face in kept})
    lines.append(f"{'all':14}{len(kept):>6}{len(faces) - len(kept):>9}{total_typefaces:>16}")
    reasons = Counter(face.refused.split(":")[0] for face in faces if face.refused)
    lines.append("refused: " + (", ".join(f"{reason} {count}" for reason, count in reasons.most_common()) or "none"))
    lines += [f"  {face.name} ({face.family}): {face.refused}" for face in faces if face.refused]
    return "\n".join(lines)


def _family_rows(kept: Sequence[ListedFace], held_out: set[str]) -> list[str]:
    rows = []
    for family in UNIVERSAL_FAMILIES:
        mine = [face for face in kept if face.family == family]
        typefaces = len({face.distribution for face in mine})
        held = sum(face.name in held_out for face in mine)
        rows.append(f"| {family} | {FAMILY_SHARES[family]:.1%} | {typefaces} | {len(mine)} | {held} |")
    return rows


def markdown(listed: FaceList, split: FaceSplit) -> str:
    """docs/faces_universal.md: the faces by family, with their packages and licences, which are held out of the
    universal style's training (the unseen-faces style's), and the refused ones."""
    kept = listed.kept
    held_out = set(split.held_out)
    typefaces = sorted({(face.family, face.distribution) for face in kept},
                       key=lambda item: (UNIVERSAL_FAMILIES.index(item[0]), item[1]))  # fmt: skip
    lines = [
        "# The universal style's faces",
        "",
        "Generated from `src/imcaption/captcha/universal_faces.json` by "
        "`python -m imcaption.captcha.face_build --markdown docs/faces_universal.md`; do not edit by hand.",
        "",
        f"{len(kept)} faces of {len(typefaces)} typefaces kept by the legibility check (version "
        f"{listed.check_version}), {len(listed.faces) - len(kept)} refused; face list sha256 `{listed.sha256}`. "
        "Each package is pinned in the `faces` extra (or `generate`) of pyproject.toml; the licence is the "
        "package metadata's own field.",
        "",
        f"Held out of the universal style's training, drawn only by the unseen-faces style: {len(held_out)} faces "
        f"({len(held_out) / len(kept):.0%}), the whole {', '.join(split.whole_families) or '(no)'} family and whole "
        "typefaces of the others (`face_list.split_faces`). `imcaption captcha generate DATA --style universal "
        "--unseen-faces N` draws N images of them into DATA/unseen_faces, a dataset folder of its own (or "
        "`--style unseen-faces` into any folder): train on DATA, read DATA/unseen_faces's val split.",
        "",
        "| family | share of the universal style's images | typefaces | faces | held out |",
        "| --- | --- | --- | --- | --- |",
        *_family_rows(kept, held_out),
        "",
        f"{UNIVERSAL_STYLE.faithful_share:.0%} of the images are drawn in the faithful style (its four faces are "
        "never held out); the shares above are those of the others, spread evenly over a family's typefaces, then "
        "over a typeface's faces. A family held out whole leaves its share to the others.",
        "",
        "| family | package | version | licence | typeface | faces | training |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for family, distribution in typefaces:
        mine = [face for face in kept if face.distribution == distribution]
        first = mine[0]
        styles = ", ".join(face.label.removeprefix(first.typeface).strip() for face in mine)
        trained = "held out" if first.name in held_out else "yes"
        lines.append(f"| {family} | {distribution} | {first.version} | {first.licence} | {first.typeface} | "
                     f"{len(mine)}: {styles} | {trained} |")  # fmt: skip
    lines += ["", "## Refused by the legibility check", "", "| face | family | package | reason |",
              "| --- | --- | --- | --- |"]  # fmt: skip
    lines += [f"| {face.label} | {face.family} | {face.distribution} | {face.refused} |"
              for face in listed.faces if face.refused]  # fmt: skip
    return "\n".join(lines) + "\n"


def _differences(stored: Sequence[ListedFace], checked: Sequence[ListedFace]) -> list[str]:
    before = {face.name: face.refused for face in stored}
    now = {face.name: face.refused for face in checked}
    return [f"{name}: stored {before.get(name, '(absent)')!r}, now {now.get(name, '(absent)')!r}"
            for name in sorted(set(before) | set(now)) if before.get(name) != now.get(name)]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imcaption.captcha.face_build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="rerun the check and compare with the stored list")
    action.add_argument("--write", action="store_true", help="rerun the check and rewrite the stored list")
    action.add_argument("--markdown", metavar="PATH", help="write the face list with licences as Markdown")
    args = parser.parse_args(argv)
    if args.markdown:
        Path(args.markdown).write_text(markdown(face_list(), universal_face_split()), encoding="utf-8")
        print(f"wrote {args.markdown}")
        return 0
    if not (args.check or args.write):
        print(report(face_list().faces))
        return 0
    checked = check_faces(candidate_faces())
    print(report(checked))
    if args.write:
        path = Path(str(resources.files("imcaption") / "captcha" / FACE_LIST_FILE))
        path.write_text(FaceList(FACE_CHECK_VERSION, tuple(checked)).to_json(), encoding="utf-8")
        print(f"wrote {path}")
        return 0
    differences = _differences(face_list().faces, checked)
    print("\n".join(differences) or "the stored list matches the check")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
