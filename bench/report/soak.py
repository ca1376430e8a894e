"""The service held at a fixed load for minutes (bench/soak.py) and concurrent cache builds (bench/cache_race.py)."""

from __future__ import annotations

from bench.report.definitions import ISSUE_SOAK, NO_ANSWER, RACE_GAP_S, SOAK_RSS_DRIFT, SOAK_STATUSES
from bench.report.formats import level, met, pct, short, yes
from bench.report.provenance import made_by
from bench.report.template import Prose

SOAK_HEADING = Prose("## Soak (`bench/soak.py` → `results/soak_*.json`)")
TITLE = Prose("### `{name}`: {minutes} minutes at {rate} requests/s ({load})")
MODEL = Prose(
    "- Model: `{model}`, {backend}, {workers} worker processes; capacity probe: {answers} answers/s with {clients} "
    "clients for {seconds} s."
)
UPLOADS = Prose(
    "- Uploads: {captchas} generated captchas checked against the model's own offline reading, plus {bad} bad "
    "uploads ({kinds})."
)
REQUESTS = Prose("- Requests: {requests}; by status: {statuses}; wrong answers: {wrong}.")
STATUS = Prose("{code}: {count}")
LATENCY = Prose(
    "- Latency from when each request was due, {p50} / {p99} per minute (ms): {per_minute}; overall {p99} {overall} ms."
)
MINUTE = Prose("{p50} / {p99}")
QUANTILES = ("p50_ms", "p99_ms")  # the latency fields shown, by minute and overall
RSS = Prose(
    "- Server RSS: {start} GB at the start, {end} GB at the end ({growth:+.1f} %), peak {peak} GB; answering "
    "afterwards: {alive}. Target (issue {issue}: no unexpected status, no wrong answer, RSS flat within {drift}): "
    "{met}."
)
MADE = Prose("- Made by: {made_by}.")

RACE_HEADING = Prose("## Concurrent cache builds (`bench/cache_race.py` → `results/cache_race.json`)")
RACE = Prose(
    "Two `imcaption captcha cache` processes started a moment apart on one {images}-image set, {rounds} times (the "
    "second started a little later each round, up to {last_gap:.2f} s after the first): every process exited "
    "cleanly: {clean}; caches that differ from a single build's bytes: {corrupt}; temporary files left: {left}; "
    "rounds in which one builder waited for the other: {waited}. Made by: {made_by}."
)


def soak_target(r: dict, growth: float) -> bool:
    return set(r["by_status"]) <= set(SOAK_STATUSES) and not r["wrong_answers"] and abs(growth) <= SOAK_RSS_DRIFT


def soak_lines(name: str, r: dict) -> list[str]:
    growth = r["server_rss_end_gb"] / r["server_rss_start_gb"] - 1
    statuses = ", ".join(
        STATUS(code=code if code != NO_ANSWER else "no answer", count=f"{n:,}") for code, n in r["by_status"].items()
    )
    per_minute = ", ".join(MINUTE(p50=short(m[QUANTILES[0]]), p99=short(m[QUANTILES[1]])) for m in r["per_minute"])
    probe, server = r["probe"], r["server"]
    return [
        TITLE(name=name, minutes=short(r["minutes"]), rate=short(r["rate_per_s"]), load=r["load"]),
        "",
        MODEL(
            model=r["model"],
            backend=server.get("backend", "?"),
            workers=server.get("worker_processes", "?"),
            answers=short(probe["answers_per_s"]),
            clients=probe["clients"],
            seconds=short(probe["seconds"]),
        ),
        UPLOADS(
            captchas=f"{r['uploads']['captchas']:,}",
            bad=pct(r["uploads"]["bad_share"]),
            kinds=", ".join(r["uploads"]["bad_kinds"]),
        ),
        REQUESTS(requests=f"{r['requests']:,}", statuses=statuses, wrong=f"{r['wrong_answers']:,}"),
        LATENCY(
            p50=QUANTILES[0].removesuffix("_ms"),
            p99=QUANTILES[1].removesuffix("_ms"),
            per_minute=per_minute,
            overall=short(r[QUANTILES[1]]),
        ),
        RSS(
            start=short(r["server_rss_start_gb"]),
            end=short(r["server_rss_end_gb"]),
            growth=100 * growth,
            peak=short(r["server_peak_rss_gb"]),
            alive=yes(r["alive_after"]),
            issue=ISSUE_SOAK,
            drift=level(SOAK_RSS_DRIFT),
            met=met(soak_target(r, growth)),
        ),
        MADE(made_by=made_by(r, with_cpu=True)),
        "",
    ]


def soak_section(results: dict[str, dict]) -> list[str]:
    rows = [line for name, r in sorted(results.items()) for line in soak_lines(name, r)]
    return [SOAK_HEADING(), "", *rows] if rows else []


def cache_race_section(race: dict | None) -> list[str]:
    if not race:
        return []
    return [
        RACE_HEADING(),
        "",
        RACE(
            images=f"{race['images']:,}",
            rounds=race["rounds"],
            last_gap=RACE_GAP_S * (race["rounds"] - 1),
            clean=yes(race["all_exit_0"]),
            corrupt=race["corrupt_caches"],
            left=race["leftover_temporary_files"],
            waited=race["rounds_where_one_waited"],
            made_by=made_by(race, with_cpu=True),
        ),
        "",
    ]
