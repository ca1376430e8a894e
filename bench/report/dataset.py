"""Dataset and cache: generating the words_captcha set and building its image cache (bench/captcha_data.py)."""

from __future__ import annotations

from bench.report.definitions import CACHE_MINUTES, DATA_SEED, FIRST_INPUT, GENERATE_MINUTES
from bench.report.formats import num, short
from bench.report.provenance import commit, made_by
from bench.report.template import Prose

MISSING = Prose("## Dataset and cache\n\nNot measured yet: run `python -m bench.captcha_data`.\n")
HEADING = Prose("## Dataset and cache (`bench/captcha_data.py` → `results/captcha_data.json`)")
INTRO = Prose("The default generator style ({style}), seed {seed}, on the {cores} cores.")
HEADER = Prose(
    "| stage | images | wall time | images/s | target | size on disk | commit |\n|---|---|---|---|---|---|---|"
)
ROW = Prose("| {stage} | {images} | {minutes} | {speed} | ≤ {target} min | {bytes} | {commit} |")
CACHE_STAGE = Prose("cache ({height} × {width})")
RSS = Prose(
    "Peak RSS of the benchmark process: {stages} (the cache build writes through a memory map, whose dirty pages "
    "count as resident)."
)
STAGE_RSS = Prose("{stage} {gb} GB")
MADE = Prose("Made by: {made_by}.")


def minutes(seconds: float | None) -> str:
    return num(seconds and round(seconds / 60, 1), " min")


def data_section(data: dict | None) -> list[str]:
    if not data:
        return [MISSING()]
    _, height, width, _ = data.get("cache_shape", [0, *FIRST_INPUT, 3])
    made_at = commit(data)
    rows = [
        HEADING(),
        "",
        INTRO(style=data.get("style", "v1"), seed=DATA_SEED, cores=data["nproc"]),
        "",
        HEADER(),
        ROW(
            stage="generate",
            images=num(data["images"]),
            minutes=minutes(data.get("generate_seconds")),
            speed=num(data.get("generate_images_per_s")),
            target=short(GENERATE_MINUTES),
            bytes=num(data.get("dataset_bytes"), " B"),
            commit=made_at,
        ),
        ROW(
            stage=CACHE_STAGE(height=height, width=width),
            images=num(data["images"]),
            minutes=minutes(data.get("cache_seconds")),
            speed=num(data.get("cache_images_per_s")),
            target=short(CACHE_MINUTES),
            bytes=num(data.get("cache_bytes"), " B"),
            commit=made_at,
        ),
        "",
    ]
    stages = [(s, data[f"{s}_peak_rss_gb"]) for s in ("generate", "cache", "all") if f"{s}_peak_rss_gb" in data]
    if stages:
        rows += [RSS(stages=", ".join(STAGE_RSS(stage=s, gb=gb) for s, gb in stages)), ""]
    if data.get("generate_note"):
        rows += [data["generate_note"], ""]
    return [*rows, MADE(made_by=made_by(data)), ""]
