"""The recognizer targets of issues 3, 12 and 28, judged from a result of bench/captcha_full.py.

Each target is a label written from the named thresholds in definitions.py and a verdict on the result."""

from __future__ import annotations

from bench.report import definitions as d
from bench.report.formats import level, short
from bench.report.template import Prose

AT_LEAST = Prose("≥ {share} {what} ({kind})")
WITHIN = Prose("{share} within {minutes} min ({kind})")
AT_LEAST_WITHIN = Prose("≥ {share} within {minutes} min{note} ({kind})")
SPEED = Prose("≥ {speed} images/s inference ({kind})")
RSS = Prose("peak RSS ≤ {gb} GB ({kind})")
VALIDATION = Prose("validation")()
OPEN_VALIDATION = Prose("validation, open vocabulary")()
TEST = Prose("test from the answer file")()
OF_THIS_CURVE = Prose(" of this run's curve")()
BUDGET_NOTE = Prose("; {minutes}-minute budgets are `sat_{minutes}*` in the probes")
MUST, GOAL = "must", "goal"
Target = tuple[str, bool]


def reached(r: dict, share: float, minutes: float) -> bool:
    """Whether the run's curve reached `share` within `minutes` (`minutes_to_<percent>` in the result)."""
    at = r.get(f"minutes_to_{round(100 * share)}")
    return at is not None and at <= minutes


def at_least(r: dict, key: str, share: float, what: str, kind: str) -> Target:
    return AT_LEAST(share=level(share), what=what, kind=kind), r[key] >= share


def early(r: dict, share: float, minutes: float, kind: str, note: str = "", bound: bool = True) -> Target:
    """`share` within `minutes` of the run's curve; bound: written "≥ share"."""
    if bound:
        label = AT_LEAST_WITHIN(share=level(share), minutes=short(minutes), note=note, kind=kind)
    else:
        label = WITHIN(share=level(share), minutes=short(minutes), kind=kind)
    return label, reached(r, share, minutes)


def machine(r: dict, kind: str) -> list[Target]:
    """Reading speed and memory: the same thresholds in every issue."""
    return [
        (SPEED(speed=f"{d.INFER_IMAGES_PER_S:,}", kind=kind), r["infer_images_per_s"] >= d.INFER_IMAGES_PER_S),
        (RSS(gb=d.PEAK_RSS_GB, kind=kind), r["peak_rss_gb"] <= d.PEAK_RSS_GB),
    ]


def first_targets(r: dict) -> list[Target]:
    """Issue 3: the first full runs, schedules in epochs."""
    return [
        at_least(r, "val_exact_match", d.FIRST_VAL_MUST, VALIDATION, MUST),
        at_least(r, "test_exact_match", d.FIRST_TEST_MUST, TEST, MUST),
        at_least(r, "val_exact_match", d.FIRST_VAL_GOAL, VALIDATION, GOAL),
        early(r, *d.FIRST_EARLY_GOAL, GOAL, bound=False),
        early(r, *d.FIRST_LATE_GOAL, GOAL, bound=False),
        *machine(r, GOAL),
    ]


def budget_targets(r: dict) -> list[Target]:
    """Issue 12: a 60-minute budget on the 2 cores."""
    note = BUDGET_NOTE(minutes=short(d.BUDGET_EARLY_MUST[1]))
    return [
        at_least(r, "val_exact_match", d.BUDGET_VAL_MUST, VALIDATION, MUST),
        at_least(r, "test_exact_match", d.BUDGET_TEST_MUST, TEST, MUST),
        early(r, *d.BUDGET_EARLY_MUST, MUST + note, note=OF_THIS_CURVE),
        *machine(r, MUST),
        at_least(r, "val_exact_match", d.BUDGET_VAL_GOAL, VALIDATION, GOAL),
    ]


def final_targets(r: dict) -> list[Target]:
    """Issue 28: the final targets for a 60-minute run on the 2 cores."""
    return [
        at_least(r, "val_exact_match", d.FINAL_VAL_MUST, OPEN_VALIDATION, MUST),
        at_least(r, "test_exact_match", d.FINAL_TEST_MUST, TEST, MUST),
        early(r, *d.FINAL_EARLY_MUST, MUST),
        *machine(r, MUST),
        at_least(r, "val_exact_match", d.FINAL_VAL_GOAL, VALIDATION, GOAL),
        early(r, *d.FINAL_EARLY_GOAL, GOAL),
    ]
