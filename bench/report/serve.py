"""Deployment: the HTTP service on loopback under load and abuse (bench/serve.py), and its other runs."""

from __future__ import annotations

from bench.report.definitions import (
    MS_PER_S,
    SERVE_IMAGES_PER_S,
    SERVE_P99_MS,
    SERVE_RSS_GB,
    STORED_HEIGHT,
    STORED_WIDTH,
)
from bench.report.formats import met, num, short, yes
from bench.report.provenance import made_by
from bench.report.template import Prose

LOAD_ROUNDS = ("load", "load_multipart", "load_model_input_png")
QUANTILES = ("p50_ms", "p95_ms", "p99_ms")
DECODE = f"decode_resize_ms_{STORED_WIDTH}x{STORED_HEIGHT}"  # the field of the PNG decoding time
STORED = f"{STORED_WIDTH}x{STORED_HEIGHT}"  # a stored captcha's size, width x height


def label(field: str) -> str:
    return field.removesuffix("_ms")


HEADING = Prose("## Deployment: the HTTP service on loopback (`bench/serve.py` → `results/serve.json`)")
INTRO = Prose(
    "`imcaption serve` as its own process with its defaults ({workers} worker processes, {backend}, batching window "
    "{window} ms); {clients} concurrent clients ({client}) on the same {cores} cores, each sending single images and "
    "the next as soon as its answer arrives; after {warm_up} s of unrecorded warm-up, {passes} passes of {seconds} s "
    "per round, the median pass shown (images/s of every pass in brackets)."
)
HEADER = Prose(
    "| uploads | images/s | {p50} | {p95} | {p99} | errors | >= {rate}/s, {p99} < {p99_ms} ms, no errors |\n"
    "|---|---|---|---|---|---|---|"
)
ROUND_NAMES = (
    Prose("captcha PNGs as stored, {stored}, raw body"),
    Prose("the same as multipart uploads"),
    Prose("the same resized by the client to {width}x{height}, raw body"),
)
ROW = Prose("| {label} | {speed} ({passes}) | {p50} ms | {p95} ms | {p99} ms | {errors} of {requests} | {met} |")
PEAK = Prose(
    "- Server peak RSS over all rounds (supervisor and workers together): {peak} GB, target < {target} GB: {met}; "
    "server up afterwards: {up}."
)
OTHER = Prose(
    "- The same rounds in `results/{file}` ({served}{backend}, {workers} worker processes): {speeds} images/s in the "
    "table's order, {meeting} of {rounds} meeting the target; decoding and resizing a {stored} PNG {decode} ms of a "
    "core; peak RSS {peak} GB{abuse}. Made by: {made_by}."
)
OTHER_SPEED = Prose("{speed} ({p99} {ms} ms)")
INT8_SERVED = Prose("the checkpoint's int8 export, ")()
ABUSE_SUMMARY = Prose(
    "; abuse corpus ({requests} requests): {errors} answers 5xx, {unexpected} unexpected, server {up} afterwards"
)
DECODING = Prose(
    "- Decoding and resizing one {stored} PNG, as the service did at this run's commit, took {decode} ms of one core, "
    "so decoding alone capped full-size uploads at {cap} images/s on the {cores} cores, before HTTP, the model and the "
    "clients; the client that sends the model's input size spares the server that work."
)
ABUSE = Prose(
    "- Abuse corpus ({cases} kinds of bad request, {requests} requests): {errors} answers 5xx, {unexpected} answers "
    "other than the expected 4xx, server up afterwards: {up}; RSS {before} GB before, {after} GB after (peak {peak} "
    "GB)."
)
MADE = Prose("- Made by: {made_by}.")


def meets_service_target(r: dict) -> bool:
    """Issue 13's target for one load round: enough images/s, p99 under the bound, no errors."""
    return r["images_per_s"] >= SERVE_IMAGES_PER_S and r["p99_ms"] < SERVE_P99_MS and r["errors"] == 0


def abuse_summary(abuse: dict | None) -> str:
    if not abuse:
        return ""
    return ABUSE_SUMMARY(
        requests=f"{abuse['requests']:,}",
        errors=abuse["server_errors_5xx"],
        unexpected=len(abuse["unexpected"]),
        up="up" if abuse["alive_after"] else "**down**",
    )


def other_serve_runs(runs: dict[str, dict]) -> list[str]:
    """The same load rounds in the other runs of bench/serve.py (--backend, --name): another backend or machine."""
    lines = []
    for name, r in runs.items():
        speeds = ", ".join(
            OTHER_SPEED(speed=num(r[k]["images_per_s"]), p99=label(QUANTILES[2]), ms=r[k]["p99_ms"])
            for k in LOAD_ROUNDS
        )
        lines.append(
            OTHER(
                file=f"serve_{name}.json",
                served=INT8_SERVED if r.get("int8_export") else "",
                backend=r["server"]["backend"],
                workers=r["server"]["worker_processes"],
                speeds=speeds,
                meeting=sum(meets_service_target(r[k]) for k in LOAD_ROUNDS),
                rounds=len(LOAD_ROUNDS),
                stored=STORED,
                decode=r[DECODE],
                peak=r["server_peak_rss_gb"],
                abuse=abuse_summary(r["abuse"]),
                made_by=made_by(r, with_cpu=True),
            )
        )
    return lines


def serve_section(serve: dict | None, others: dict[str, dict]) -> list[str]:
    """The service under load and abuse, and the other runs (`others`, by the name after `serve_`)."""
    if not serve:
        return []
    abuse, peak, server, decode = serve["abuse"], serve["server_peak_rss_gb"], serve["server"], serve[DECODE]
    height, width = serve["model_input"].split("x")
    names = [ROUND_NAMES[0](stored=STORED), ROUND_NAMES[1](), ROUND_NAMES[2](width=width, height=height)]

    def row(round_label: str, r: dict) -> str:
        return ROW(
            label=round_label,
            speed=num(r["images_per_s"]),
            passes=", ".join(num(p["images_per_s"]) for p in r["passes"]),
            p50=r["p50_ms"],
            p95=r["p95_ms"],
            p99=r["p99_ms"],
            errors=r["errors"],
            requests=f"{r['requests']:,}",
            met=met(meets_service_target(r)),
        )

    cores = serve["nproc"]
    return [
        HEADING(),
        "",
        INTRO(
            workers=server["worker_processes"],
            backend=server["backend"],
            window=short(serve["batch_window_ms"]),
            clients=serve["clients"],
            client=serve["client"],
            cores=cores,
            warm_up=short(serve["warm_up_seconds"]),
            passes=len(serve["load"]["passes"]),
            seconds=short(serve["seconds"]),
        ),
        "",
        HEADER(
            p50=label(QUANTILES[0]),
            p95=label(QUANTILES[1]),
            p99=label(QUANTILES[2]),
            rate=SERVE_IMAGES_PER_S,
            p99_ms=SERVE_P99_MS,
        ),
        *(row(name, serve[key]) for name, key in zip(names, LOAD_ROUNDS, strict=True)),
        "",
        PEAK(peak=peak, target=short(SERVE_RSS_GB), met=met(peak < SERVE_RSS_GB), up=yes(serve["alive_after"], True)),
        *other_serve_runs(others),
        DECODING(stored=STORED, decode=decode, cap=num(round(MS_PER_S * cores / decode)), cores=cores),
        ABUSE(
            cases=abuse["cases"],
            requests=f"{abuse['requests']:,}",
            errors=abuse["server_errors_5xx"],
            unexpected=len(abuse["unexpected"]),
            up=yes(abuse["alive_after"], True),
            before=abuse["rss_before_gb"],
            after=abuse["rss_after_gb"],
            peak=abuse["server_peak_rss_gb"],
        ),
        MADE(made_by=made_by(serve, with_cpu=True)),
        "",
    ]
