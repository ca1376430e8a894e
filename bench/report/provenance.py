"""Provenance lines: the command, the commit (marked where the tree had uncommitted changes) and the CPU."""

from __future__ import annotations

from bench.report.definitions import ENGINE_VERSION, SHORT_SHA
from bench.report.template import Prose

MADE_BY = Prose("`{command}` at {commit}{retrained}{cpu}{shared}")
RETRAINED = Prose(" (trained at {commit}, evaluated again)")
ON_CPU = Prose(" on {cpu}")
SHARED = Prose(", cores shared")
NOT_RECORDED = Prose("not recorded (before imcaption {version})")
# In the row itself, beside the commit: a result made on a tree with uncommitted changes is not that commit's.
UNCOMMITTED = Prose("{commit} (uncommitted tree)")
DIRTY_SUFFIX = "+changes"  # bench/provenance.py's git_commit()


def uncommitted(result: dict) -> bool:
    return result.get("git_commit", "").endswith(DIRTY_SUFFIX)


def commit(result: dict) -> str:
    """The short commit a result was made at, marked "(uncommitted tree)" where the tree differed from it."""
    sha = result["git_commit"][:SHORT_SHA]
    return UNCOMMITTED(commit=sha) if uncommitted(result) else sha


def made_by(result: dict, with_cpu: bool = False) -> str:
    """The command and commit that made `result`; with_cpu: and the CPU it ran on, where it recorded one."""
    if not result.get("command"):
        return NOT_RECORDED(version=ENGINE_VERSION)
    trained = result.get("trained_at_commit", result["git_commit"])
    retrained = RETRAINED(commit=trained[:SHORT_SHA]) if trained != result["git_commit"] else ""
    return MADE_BY(
        command=result["command"],
        commit=commit(result),
        retrained=retrained,
        cpu=on_cpu(result) if with_cpu else "",
        shared=SHARED() if result.get("cores_shared") else "",
    )


def on_cpu(result: dict) -> str:
    """ " on <CPU>" where the result recorded its CPU: speeds, and so what a wall-time budget buys, depend on it."""
    return ON_CPU(cpu=result["cpu"]) if result.get("cpu") else ""


def cpus(result: dict) -> list[str]:
    """Every CPU a result (or a result nested in it) records."""
    found = [result["cpu"]] if isinstance(result.get("cpu"), str) else []
    return found + [cpu for value in result.values() if isinstance(value, dict) for cpu in cpus(value)]


def cores(results: list[dict]) -> list[int]:
    """Every core count (nproc) the results record, nested ones included."""
    found: set[int] = set()
    for result in results:
        if isinstance(result.get("nproc"), int):
            found.add(result["nproc"])
        found.update(cores([value for value in result.values() if isinstance(value, dict)]))
    return sorted(found)
