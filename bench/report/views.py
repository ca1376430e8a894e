"""Test-time augmentation on a finished run (bench/captcha_views.py): shifted copies of each image averaged."""

from __future__ import annotations

from bench.report.formats import num, pct
from bench.report.provenance import made_by
from bench.report.template import Prose

HEADING = Prose("## Test-time augmentation (`bench/captcha_views.py` → `results/captcha_views_<run>.json`)")
INTRO = Prose(
    "A finished run's best checkpoint reads the whole validation split ({images} images, reading precision "
    "{precision}) as the image alone and as {views} copies shifted by a few pixels (left and right; and up and "
    "down), the copies' letter log-probabilities averaged at every decoding step (`--views`, "
    "`src/imcaption/models/views.py`); the shift of the widest copies is the one that read best with fewer. "
    "Nothing is trained and the test split is not read: the choice is made on validation."
)
HEADER = Prose("| run | search | copies | shift | validation exact match | images/s |\n|---|---|---|---|---|---|")
ROW = Prose("| `{name}` | {search} | {views} | {shift} | {val} | {speed} |")
MADE = Prose("Made by: {made_by}.")
SHIFT = Prose("{px} px")


def views_section(results: dict[str, dict]) -> list[str]:
    if not results:
        return []
    rows: list[str] = [HEADING(), ""]
    for name, r in sorted(results.items()):
        copies = sorted({row["views"] for row in r["rows"]})
        rows += [
            INTRO(images=f"{r['val_images']:,}", precision=r["precision"], views=" or ".join(map(str, copies[1:]))),
            "",
            HEADER(),
        ]
        for row in r["rows"]:
            shift = SHIFT(px=row["shift_px"]) if row["views"] > 1 else "—"
            rows.append(
                ROW(name=name, search=row["search"], views=row["views"], shift=shift,
                    val=pct(row["val_exact_match"]), speed=num(row["images_per_s"]))
            )  # fmt: skip
        rows += ["", MADE(made_by=made_by(r, with_cpu=True)), ""]
    return rows
