"""Benchmark: how much each generator style looks like the real words_captcha, by the project's likeness tool.

    python -m bench.captcha_likeness [--styles v1 faithful wide] [--count 200]
                                     [--tool LIKENESS_PY] [--reference A8_PNG]

Draws --count images of each style (seed 0, the default vocabulary) into a temporary folder, runs the likeness
tool (ink share, ink in the 6-px border band, speckle, stroke widths, hues, blobs) on them and on the official
real sample a8.png, and writes bench/results/captcha_likeness.json. Neither the tool nor a8.png ships with the
repository: pass their paths (the defaults are where the project's workspace keeps them).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a file, not with -m: make `bench` importable all the same
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESULTS = Path(__file__).parent / "results" / "captcha_likeness.json"


def likeness(tool: Path, paths: list[Path]) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "likeness.json"
        command = [sys.executable, str(tool), *map(str, paths), "--limit", "100000", "--json", str(out)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def draw_style(style_name: str, count: int, folder: Path) -> list[Path]:
    from imcaption.captcha.generator import STYLES, FontCache, render_index, save_png_atomically
    from imcaption.captcha.vocabulary import default_vocabulary

    vocabulary, fonts, style = default_vocabulary(), FontCache(), STYLES[style_name]
    paths = []
    for index in range(count):
        path = folder / f"a{index}.png"
        save_png_atomically(render_index(vocabulary, 0, index, fonts, style).image, path)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--styles", nargs="+", default=["v1", "faithful", "wide"])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--tool", type=Path, default=Path("../shared/tools/likeness.py"))
    parser.add_argument("--reference", type=Path, default=Path("../shared/reference/a8.png"))
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    args = parser.parse_args()
    for path in (args.tool, args.reference):
        if not path.is_file():
            raise SystemExit(f"{path} not found (see --help)")

    from bench.provenance import provenance
    from imcaption.files import write_text_atomically

    results = {**provenance(args.shared), "count": args.count, "real_a8": likeness(args.tool, [args.reference])}
    for style in args.styles:
        with tempfile.TemporaryDirectory() as folder:
            results[style] = likeness(args.tool, draw_style(style, args.count, Path(folder)))
        print(style, json.dumps({key: round(value["mean"], 4) for key, value in results[style].items()}))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(RESULTS, json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
