"""Likeness of the generated styles to the real images (bench/captcha_likeness.py)."""

from __future__ import annotations

from bench.report.definitions import BLOB_MIN_PX, BORDER_BAND_PX, DATA_SEED, REAL_SAMPLE, SPECKLE_PER_PX
from bench.report.provenance import made_by
from bench.report.template import Prose

HEADING = Prose("## Likeness to the real images (`bench/captcha_likeness.py` → `results/captcha_likeness.json`)")
INTRO = Prose(
    "The project's likeness statistics (the tool `bench/captcha_likeness.py --tool` runs) on the official real "
    "sample `{real}` and on {count} images of each generator style (seed {seed}): mean, and {low}-{high} over the "
    "images. The default style was tuned towards the real images' look (these figures, and real samples seen side "
    "by side), never towards accuracy. Made by: {made_by}."
)
HEADER = Prose("| statistic | real `{real}` | {styles} |")
SPREAD = ("p10", "p90")  # the spread each statistic records besides its mean, by these names
CELL = Prose("{mean} ({low}-{high})")
ROW = Prose("| {label} | {real} | {generated} |")
# (statistic, label, scale, unit), in the tool's own terms.
FIELDS = (
    ("ink", Prose("ink share")(), 100, " %"),
    ("edge_ink", Prose("ink in the {band}-px border band")(band=BORDER_BAND_PX), 100, " %"),
    ("speckle", Prose("speckle per {per} px")(per=f"{SPECKLE_PER_PX:,}"), 1, ""),
    ("width_p50", Prose("stroke width, median")(), 1, " px"),
    ("width_p90", Prose("stroke width, {percentile}")(percentile=SPREAD[1]), 1, " px"),
    ("colors", Prose("ink hues")(), 1, ""),
    ("blobs", Prose("blobs ≥ {size} px")(size=BLOB_MIN_PX), 1, ""),
)


def likeness_section(likeness: dict | None) -> list[str]:
    if not likeness:
        return []
    styles = [name for name in ("faithful", "v1", "wide") if name in likeness]

    def value(stats: dict, key: str, scale: float, unit: str) -> str:
        return f"{stats[key] * scale:.2f}{unit}"

    def cell(stats: dict, scale: float, unit: str, spread: bool) -> str:
        mean = value(stats, "mean", scale, unit)
        if not spread:
            return mean
        return CELL(mean=mean, low=f"{stats[SPREAD[0]] * scale:.2f}", high=f"{stats[SPREAD[1]] * scale:.2f}")

    rows = [
        HEADING(),
        "",
        INTRO(
            real=REAL_SAMPLE,
            count=likeness["count"],
            seed=DATA_SEED,
            low=SPREAD[0],
            high=SPREAD[1],
            made_by=made_by(likeness),
        ),
        "",
        HEADER(real=REAL_SAMPLE, styles=" | ".join(f"`{name}`" for name in styles)),
        "|---" * (len(styles) + 2) + "|",
    ]
    for key, label, scale, unit in FIELDS:
        real = cell(likeness["real_a8"][key], scale, unit, spread=False)
        generated = [cell(likeness[name][key], scale, unit, spread=True) for name in styles]
        rows.append(ROW(label=label, real=real, generated=" | ".join(generated)))
    return [*rows, ""]
