"""Draw docs/faces.png: the real sample a8.png above the word `lot` (its label) in every captcha face, at the
size and in the color of the real letters, to choose faces by eye.

    python scripts/face_sheet.py [--reference A8_PNG] [--out docs/faces.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from imcaption.captcha.fonts import FACES
from imcaption.captcha.generator import STYLES, FontCache

ROW = (300, 140)
COLUMNS = 4
EM_SIZE = 100  # the middle of the faithful style's em sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", default="../shared/reference/a8.png")
    parser.add_argument("--out", default="docs/faces.png")
    args = parser.parse_args()

    reference = Image.open(args.reference).convert("RGB")
    rows = -(-len(FACES) // COLUMNS)
    sheet = Image.new("RGB", (COLUMNS * ROW[0], reference.height + rows * ROW[1]), "white")
    sheet.paste(reference, (0, 0))
    draw = ImageDraw.Draw(sheet)
    draw.text((reference.width + 10, 10), "top left: a8.png, real, label `lot` (600 x 320, full size)", fill="black")
    draw.text((reference.width + 10, 30), "below: `lot` in every face, em 100 px; * = the default style", fill="black")
    fonts, default = FontCache(), set(STYLES["faithful"].faces)
    for n, name in enumerate(FACES):
        x, y = (n % COLUMNS) * ROW[0], reference.height + (n // COLUMNS) * ROW[1]
        label = f"{name} ({FACES[name].family}){' *' if name in default else ''}"
        draw.text((x + 10, y + 6), label, fill="black")
        draw.text((x + 10, y + 110), "lot", font=fonts.get(name, EM_SIZE), fill=(20, 110, 170), anchor="ls")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
