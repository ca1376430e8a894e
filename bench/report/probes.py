"""The recipe search: probes at equal wall time against the default, and the CRNN peer (bench/captcha_probe.py)."""

from __future__ import annotations

from bench.report import definitions as d
from bench.report.formats import level, met, num, pct, short
from bench.report.provenance import made_by
from bench.report.recognizers import training_precision
from bench.report.template import Prose

# The probe each probe is compared with: the default's probe of the same budget, and for probes made after batch
# 64 became the default (commit 20a2108), the probe of that new default (`sat_15_batch64`), not the old one.
COMPARED_WITH = {
    "sat_15_80x160": "sat_15_batch64",
    "sat_15_ch96": "sat_15_batch64",
    "sat_15_bf16": "sat_15_batch64",
    # Levers tried on top of bf16 compare with bf16 alone.
    "sat_15_bf16_80x160": "sat_15_bf16",
    # Once bf16 at 80x160 became the default (commit d22e1f1), levers compare with its probe; once 96x192 did
    # (commit 9c2f68a), with that one's.
    "sat_15_96x192": "sat_15_bf16_80x160",
    # The same probe again on an idle machine (sat_15_96x192 shared the cores with a test run for part of it).
    "sat_15_96x192_idle": "sat_15_bf16_80x160",
    # The default on an AMD EPYC (bf16 in AVX-512, no AMX), against the last 15-minute probe of the same recipe,
    # made on the Intel Xeon (AMX): what the same budget buys on the other machine.
    "sat_15_epyc": "sat_15_96x192_idle",
    "sat_15_ema": "sat_15_96x192",
    # The 60-minute levers on the AMD EPYC compare with the default's full run on it (bench/captcha_full.py).
    "sat_60_epyc_batch32": "sat_60_epyc",
    "sat_60_epyc_hidden512": "sat_60_epyc",
}
MIN_RATIO_DECIMALS = 10  # a ratio of at least this is shown without decimals

HEADING = Prose("## Recipe probes at equal wall time (`bench/captcha_probe.py` → `results/captcha_probes.json`)")
INTRO = Prose(
    "Each probe trains on the full {train} training images for a fixed wall-time budget (`--minutes`: the cosine "
    "reaches its floor when the time is up), validates on {subset} validation images as it goes and on all {val} at "
    "the end; one change at a time against the default (`sat`) at the same budget. Δ is the full-validation "
    "difference, in points, from the probe that column names: the default's probe of the same budget made with the "
    "same defaults, or, for a lever tried on top of another change, the probe of that change. Probes named `bf16` "
    "train the forward pass in bfloat16 autocast, which the Xeon runs in hardware (AMX). Options are those of the "
    "probe's day: every probe trained with the defaults of its commit, whose input size and precision the third "
    "column shows. `crnn` is the peer: a standard captcha CRNN as captcha_trainer's users train it (a gray CNN, a "
    "two-layer BiLSTM and CTC, Adam, no augmentation: the options in its row; `src/imcaption/models/crnn.py`), "
    "trained by the same benchmark on the same machine with our budgeted schedule. One run per probe: no probe has "
    "been repeated, and this virtual machine's training speed varies from one validation window to the next within "
    "a single run (`train_images_per_s` in each run's metrics.jsonl), so a difference of a point or so between two "
    "probes is not established by these rows alone (the spread of two seeds: Noise, above)."
)
HEADER = Prose(
    "| probe | options | input, precision | budget | parameters | steps | training images/s | validation exact "
    "match ({val}) | Δ vs default | CER | minutes to {level} ({subset}-image subset) | made by |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)
ROW = Prose(
    "| {name} | `{options}` | {input}, {precision} | {budget} min | {parameters} | {steps} | {speed} | {val} | "
    "{delta} | {cer} | {minutes} | {made_by} |"
)
DELTA = Prose("{points:+.2f} vs `{base}`")
DEFAULT_OPTIONS = Prose("(default)")()
PEER = Prose(
    "At {budget} minutes: our best (`{best}`) reads {best_val} of the validation images{steps}, `{ours}` "
    "{ours_val}, the CRNN peer {peer_val} ({peer_steps} steps, CER {peer_cer}): {ratio} times the peer's share for "
    "the best. The peer trains at {peer_speed} images/s against `{ours}`'s {ours_speed}: its full-resolution "
    "wide-kernel convolutions are sized for a GPU."
)
STEPS = Prose(" ({steps} steps)")
EARLY = Prose(
    "A {budget}-minute budget with the defaults of its commit (`{name}`, {input}, {precision}): {val} of the "
    "{images} validation images. Issue {issue}'s must of ≥ {level} within {budget} minutes: {met}."
)


def budget_name(budget: float) -> str:
    return f"sat_{short(budget)}"


def peer_line(budget: float, probes: dict, runs: dict[str, dict]) -> list[str]:
    """Our best at a budget (probes and full runs on the peer's CPU) against the CRNN peer's."""
    ours_name = budget_name(budget)
    ours, peer = probes.get(ours_name) or runs.get(ours_name), probes.get(f"crnn_{short(budget)}")
    if not (ours and peer):
        return []
    candidates = [  # on the peer's CPU: another machine's training speed is not ours to credit
        (n, p)
        for n, p in [*probes.items(), *runs.items()]
        if p.get("budget_minutes") == budget and p["model"] != "crnn" and p.get("cpu") == peer.get("cpu")
    ]
    best_name, best = max([(ours_name, ours), *candidates], key=lambda item: item[1]["val_exact_match"])
    ratio = best["val_exact_match"] / max(peer["val_exact_match"], 1e-9)
    line = PEER(
        budget=short(budget),
        best=best_name,
        best_val=pct(best["val_exact_match"]),
        steps=STEPS(steps=f"{best['steps']:,}") if "steps" in best else "",
        ours=ours_name,
        ours_val=pct(ours["val_exact_match"]),
        peer_val=pct(peer["val_exact_match"]),
        peer_steps=f"{peer['steps']:,}",
        peer_cer=pct(peer["val_cer"]),
        ratio=f"{ratio:,.{0 if ratio >= MIN_RATIO_DECIMALS else 2}f}",
        peer_speed=num(peer["train_images_per_s"]),
        ours_speed=num(ours["train_images_per_s"]),
    )
    return [line, ""]


def delta(name: str, p: dict, probes: dict, runs: dict[str, dict]) -> str:
    base_name = COMPARED_WITH.get(name, budget_name(p["budget_minutes"]))
    base = probes.get(base_name) or runs.get(base_name)
    if not base or base is p:
        return "—"
    return DELTA(points=100 * (p["val_exact_match"] - probe_val_exact_match(base)), base=base_name)


def probe_val_exact_match(result: dict) -> float:
    """The whole validation split as a probe reads it: training's last validation (greedy, the training
    precision); a full run's own figure is read again after training, in the reading precision."""
    whole = [point for point in result.get("curve", []) if point.get("val_images") == d.VAL_IMAGES]
    return whole[-1]["val_exact_match"] if whole else result["val_exact_match"]


def probe_section(probes: dict | None, runs: dict[str, dict]) -> list[str]:
    if not probes:
        return []
    share, minutes = d.BUDGET_EARLY_MUST
    rows = [
        HEADING(),
        "",
        INTRO(train=f"{d.TRAIN_IMAGES:,}", subset=f"{d.VAL_SUBSET:,}", val=f"{d.VAL_IMAGES:,}"),
        "",
        HEADER(val=f"{d.VAL_IMAGES:,}", level=level(share), subset=f"{d.VAL_SUBSET:,}"),
    ]
    for name, p in probes.items():
        rows.append(
            ROW(
                name=name,
                options=p["options"] or DEFAULT_OPTIONS,
                input=p["input_size"],
                precision=training_precision(p),
                budget=short(p["budget_minutes"]),
                parameters=num(p["parameters"]),
                steps=f"{p['steps']:,}",
                speed=num(p["train_images_per_s"]),
                val=pct(p["val_exact_match"]),
                delta=delta(name, p, probes, runs),
                cer=pct(p["val_cer"]),
                minutes=num(p[f"minutes_to_{round(100 * share)}_subset"]),
                made_by=made_by(p, with_cpu=True),
            )
        )
    rows.append("")
    for budget in sorted({p["budget_minutes"] for p in probes.values()}):
        rows += peer_line(budget, probes, runs)
    # Every probe of the default recognizer (no options: the defaults of its commit) at issue 12's early budget.
    for name, p in probes.items():
        if p["budget_minutes"] != minutes or p["model"] != "sat" or p["options"]:
            continue
        rows += [
            EARLY(
                budget=short(minutes),
                name=name,
                input=p["input_size"],
                precision=training_precision(p),
                val=pct(p["val_exact_match"]),
                images=f"{p.get('val_images', d.VAL_IMAGES):,}",
                issue=d.ISSUE_BUDGET,
                level=level(share),
                met=met(p["val_exact_match"] >= share),
            ),
            "",
        ]
    return [*rows, ""]
