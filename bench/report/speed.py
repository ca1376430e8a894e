"""Reading speed: where inference time goes (bench/infer_profile.py) and the encoder candidates
(bench/encoder_speed.py)."""

from __future__ import annotations

from bench.report.definitions import DEFAULT_HIDDEN, ENCODER_BENCH_BATCH, OLD_READ_BATCH
from bench.report.formats import num, pct
from bench.report.provenance import commit, made_by
from bench.report.template import Prose

PROFILE_HEADING = Prose("## Where inference time goes (`bench/infer_profile.py` → `results/infer_profile_<name>.json`)")
PROFILE_INTRO = Prose(
    "Reading of validation images from the cache on the {cores} cores (BatchNorm folded into the convolutions, "
    "channels-last weights, no gradients) in the batch size and search each line names (results before the search "
    "was recorded read greedily in batches of {old_batch}), then torch.profiler over a few batches: the share of the "
    "operators' own CPU time by kind."
)
PROFILE_LINE = Prose(
    "- `{name}` ({model}, {precision}, {reading}{images} images): **{speed} images/s**{passes}, {microseconds} µs per "
    "image.{agreement} Time: {shares}. Made by: {made_by}."
)
READING = Prose("{search}, batch {batch}, ")
PASSES = Prose(" (median of passes {passes})")
AGREEMENT = Prose(" {differing} of {images} words differ from the fp32 reading; exact match {share}.")
SHARE = Prose("{group} {share}")

ENCODER_HEADING = Prose(
    "## Encoder candidates (`bench/encoder_speed.py` → `results/encoder_speed*.json`): training steps on random batches"
)
ENCODER_INTRO = Prose("`{file}`: batches of {batch}, training in {precision}.")
ENCODER_HEADER = Prose(
    "| input | channels | decoder state | parameters | training images/s | forward images/s | commit |\n"
    "|---|---|---|---|---|---|---|"
)
ENCODER_ROW = Prose("| {input} | {channels} | {hidden} | {parameters} | {train} | {forward} | {commit} |")
MADE = Prose("Made by: {made_by}.")


def profile_line(name: str, r: dict) -> str:
    precision = r.get("precision", "fp32")
    agreement = ""
    if precision != "fp32":
        agreement = AGREEMENT(
            differing=f"{r['words_differing_from_fp32']:,}", images=f"{r['images']:,}", share=pct(r["exact_match"])
        )
    passes = ""
    if "passes_images_per_s" in r:
        passes = PASSES(passes=", ".join(num(p) for p in r["passes_images_per_s"]))
    return PROFILE_LINE(
        name=name,
        model=r["model"],
        precision=precision,
        reading=READING(search=r["search"], batch=r["batch"]) if "search" in r else "",
        images=f"{r['images']:,}",
        speed=num(r["images_per_s"]),
        passes=passes,
        microseconds=r["microseconds_per_image"],
        agreement=agreement,
        shares="; ".join(SHARE(group=group, share=pct(share)) for group, share in r["time_share"].items()),
        made_by=made_by(r, with_cpu=True),
    )


def profile_section(profiles: dict[str, dict]) -> list[str]:
    if not profiles:
        return []
    cores = "/".join(map(str, sorted({r["threads"] for r in profiles.values()})))
    intro = PROFILE_INTRO(cores=cores, old_batch=OLD_READ_BATCH)
    return [PROFILE_HEADING(), "", intro, "", *(profile_line(n, r) for n, r in profiles.items()), ""]


def speed_section(speeds: dict[str, dict]) -> list[str]:
    """Every encoder_speed*.json: one table each (the first, `encoder_speed.json`, predates the decoder-state and
    precision fields: its rows are the default state in fp32)."""
    if not speeds:
        return []
    rows = [ENCODER_HEADING(), ""]
    for name, speed in speeds.items():
        rows += [ENCODER_INTRO(file=f"encoder_speed{name}.json", batch=speed.get("batch", ENCODER_BENCH_BATCH),
                               precision=speed.get("precision", "fp32")), "", ENCODER_HEADER()]  # fmt: skip
        rows += [encoder_row(r, speed) for r in speed["rows"]]
        rows += ["", MADE(made_by=made_by(speed, with_cpu=True)), ""]
    return rows


def encoder_row(r: dict, speed: dict) -> str:
    return ENCODER_ROW(
        input=r["input"],
        channels="-".join(map(str, r["channels"])),
        hidden=r.get("hidden", DEFAULT_HIDDEN),
        parameters=f"{r['parameters']:,}",
        train=f"{r['train_images_per_s']:,}",
        forward=f"{r['forward_images_per_s']:,}",
        commit=commit(speed),
    )
