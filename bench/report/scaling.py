"""Data-parallel scaling under torchrun (bench/scaling.py)."""

from __future__ import annotations

from bench.report.definitions import ISSUE_SCALING, SCALING_CORES, SCALING_EFFICIENCY, SCALING_PROCESSES
from bench.report.formats import level, num, pct
from bench.report.provenance import commit, made_by
from bench.report.template import Prose

HEADING = Prose("## Data-parallel scaling (`bench/scaling.py` → `results/scaling_<cores>cores.json`)")
INTRO = Prose(
    "The same training from scratch, one process against N under torchrun (gloo), each process with the same "
    "threads, the same global batch; images/s is the loop's training throughput. Efficiency: images/s with N "
    "processes over N times one process's. Target (issue {issue}): >= {efficiency} from {low} to {high} processes on "
    "a {cores}-core machine."
)
HEADER = Prose(
    "| machine | processes x threads | global batch | steps | training images/s | efficiency | commit |\n"
    "|---|---|---|---|---|---|---|"
)
ROW = Prose("| {name} | {processes} x {threads} | {batch} | {steps} | {speed} | {efficiency} | {commit} |")
NOTE = Prose("- {name}: made by {made_by} on {cpu}.")


def scaling_section(results: dict[str, dict]) -> list[str]:
    if not results:
        return []
    low, high = SCALING_PROCESSES
    rows = [
        HEADING(),
        "",
        INTRO(issue=ISSUE_SCALING, efficiency=level(SCALING_EFFICIENCY), low=low, high=high, cores=SCALING_CORES),
        "",
        HEADER(),
    ]
    notes = []
    for name, r in results.items():
        rows += [
            ROW(
                name=name,
                processes=row["processes"],
                threads=row["threads_per_process"],
                batch=r["global_batch"],
                steps=row["steps"],
                speed=num(row["train_images_per_s"]),
                efficiency=pct(row.get("efficiency")),
                commit=commit(r),
            )
            for row in r["rows"]
        ]
        notes.append(NOTE(name=name, made_by=made_by(r), cpu=r["cpu"]))
    return [*rows, "", *notes, ""]
