"""Draw docs/contact_sheet.png: 16 generated captchas beside the official sample a8.png.

python scripts/contact_sheet.py [--style faithful|v1|wide|universal|unseen-faces] [--reference A8_PNG]
                                [--out docs/contact_sheet.png] [--images 16] [--columns 4]

docs/faces_universal.png: --style universal --images 48 --columns 6 --out docs/faces_universal.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from imcaption.captcha.face_list import face_list
from imcaption.captcha.generator import STYLES, FontCache, render_index
from imcaption.captcha.vocabulary import default_vocabulary

TILE = (300, 160)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", default="../shared/reference/a8.png")
    parser.add_argument("--out", default="docs/contact_sheet.png")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--style", choices=list(STYLES), default="faithful")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--columns", type=int, default=4)
    args = parser.parse_args()

    columns, rows = args.columns, 1 + -(-args.images // args.columns)
    listed = face_list().by_name  # the universal style's faces go by their typeface and weight
    sheet = Image.new("RGB", (columns * TILE[0], rows * TILE[1] + 20), "white")
    draw = ImageDraw.Draw(sheet)
    reference = Image.open(args.reference).convert("RGB").resize(TILE, Image.Resampling.BOX)
    sheet.paste(reference, (0, 0))
    draw.text((TILE[0] + 10, 10), "left: the official sample a8.png (real data)", fill="black")
    caption = (
        f"below: generated images a0-a{args.images - 1}, {args.style} style, seed {args.seed}, with labels and faces"
    )
    draw.text((TILE[0] + 10, 30), caption, fill="black")
    fonts = FontCache()
    vocabulary = default_vocabulary()
    for index in range(args.images):
        rendered = render_index(vocabulary, args.seed, index, fonts, STYLES[args.style])
        x, y = (index % columns) * TILE[0], (1 + index // columns) * TILE[1]
        sheet.paste(rendered.image.resize(TILE, Image.Resampling.BOX), (x, y))
        face = listed[rendered.face].label if rendered.face in listed else rendered.face
        draw.text((x + 4, y + 2), f"a{index} {rendered.word} ({face})", fill="black")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
