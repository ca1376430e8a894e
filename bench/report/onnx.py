"""Deployment: ONNX Runtime against PyTorch (bench/onnx_speed.py) and the int8 export (bench/onnx_int8.py)."""

from __future__ import annotations

from bench.report.definitions import (
    ISSUE_DEPLOY,
    MS_PER_S,
    ONNX_BATCH,
    ONNX_SPEEDUP,
    SINGLE_BATCH,
    TIMING_PASSES,
)
from bench.report.formats import met, num, short
from bench.report.provenance import commit, made_by
from bench.report.template import Prose

BACKENDS = ("pytorch", "onnxruntime")
BIG = f"batch_{ONNX_BATCH}_images_per_s"  # the large-batch figure's field
BIG_PASSES = f"batch_{ONNX_BATCH}_passes_images_per_s"  # and each of its passes
ONE = f"batch_{SINGLE_BATCH}"  # the single-image latency's fields
LATENCY = ("p50_ms", "p99_ms")


def label(field: str) -> str:
    """A latency field's name as a column says it: p50_ms -> p50."""
    return field.removesuffix("_ms")


HEADING = Prose(
    "## Deployment: ONNX Runtime against PyTorch (`bench/onnx_speed.py` → `results/onnx_speed_<name>.json`)"
)
INTRO = Prose(
    "The same checkpoint read by both backends back to back, greedy decoding in fp32 (the number format ONNX "
    "Runtime reads in; the reading commands' default, `auto`, runs PyTorch's encoder in bf16 on a CPU with bf16 in "
    'hardware: "Where inference time goes"), inputs from the cache (no PNG decoding), the {cores} cores; batch '
    "{big} is the median of {passes} passes alternating between the backends where the passes are listed. The ratio "
    "depends on the CPU (each backend has its own convolution kernels), so each row names the one it ran on. Target "
    "(issue {issue}): ONNX Runtime at least {target}x PyTorch's images/s at batch {big}, with identical words."
)
HEADER = Prose(
    "| model | CPU | backend | batch {big} images/s | batch {one} images/s | batch {one} {low} | batch {one} {high} "
    "| commit |\n|---|---|---|---|---|---|---|---|"
)
ROW = Prose("| `{name}` ({model}) | {cpu} | {backend} | {big} | {one} | {low} ms | {high} ms | {commit} |")
NOTE = Prose(
    "- `{name}`: ONNX Runtime {speedup}x PyTorch at batch {big} ({met}{passes}), {single}x at batch {one}; same words "
    "on {same} of {parity} validation images, largest logit difference {difference:.1e}; the .onnx file is {bytes} "
    "bytes. Made by: {made_by}."
)
PASSES = Prose("; passes, images/s: {passes}")
BACKEND_PASSES = Prose("{backend} {passes}")
CEILING = Prose(
    "- `{name}`, the encoder alone (convolutions and pooling, the same uint8 input) at batch {big}: PyTorch "
    "{pytorch}, ONNX Runtime {onnxruntime} images/s, so the decoding steps take {pytorch_ms:.3f} ms an image in "
    "PyTorch and {onnxruntime_ms:.3f} ms in ONNX Runtime. With free decoding steps ONNX Runtime would read at "
    "{ceiling}x PyTorch; {target}x needs its steps at {needed_ms:.3f} ms an image or less."
)


def encoder_ceiling(name: str, r: dict) -> list[str]:
    """What the encoder alone says about the large-batch ratio: the most ONNX Runtime could gain if its decoding
    steps were free, and how fast they would have to be for the target."""
    if "encoder_only" not in r:
        return []
    encoder = {backend: r["encoder_only"][backend][BIG] for backend in BACKENDS}
    whole = {backend: r[backend][BIG] for backend in BACKENDS}
    steps_ms = {backend: MS_PER_S / whole[backend] - MS_PER_S / encoder[backend] for backend in BACKENDS}
    needed_ms = MS_PER_S / (ONNX_SPEEDUP * whole["pytorch"]) - MS_PER_S / encoder["onnxruntime"]
    return [
        CEILING(
            name=name,
            big=ONNX_BATCH,
            pytorch=num(encoder["pytorch"]),
            onnxruntime=num(encoder["onnxruntime"]),
            pytorch_ms=steps_ms["pytorch"],
            onnxruntime_ms=steps_ms["onnxruntime"],
            ceiling=r[f"onnx_speedup_ceiling_batch_{ONNX_BATCH}"],
            target=short(ONNX_SPEEDUP),
            needed_ms=max(needed_ms, 0),
        )
    ]


def onnx_section(speeds: dict[str, dict]) -> list[str]:
    if not speeds:
        return []
    cores = "/".join(map(str, sorted({r["nproc"] for r in speeds.values()})))
    rows = [
        HEADING(),
        "",
        INTRO(cores=cores, big=ONNX_BATCH, passes=TIMING_PASSES, issue=ISSUE_DEPLOY, target=short(ONNX_SPEEDUP)),
        "",
        HEADER(big=ONNX_BATCH, one=SINGLE_BATCH, low=label(LATENCY[0]), high=label(LATENCY[1])),
    ]
    notes = []
    for name, r in speeds.items():
        for backend in BACKENDS:
            b = r[backend]
            rows.append(
                ROW(
                    name=name,
                    model=r["model"],
                    cpu=r["cpu"],
                    backend=backend,
                    big=num(b[BIG]),
                    one=num(b[ONE]["images_per_s"]),
                    low=b[ONE][LATENCY[0]],
                    high=b[ONE][LATENCY[1]],
                    commit=commit(r),
                )
            )
        speedup = r[f"onnx_speedup_batch_{ONNX_BATCH}"]
        listed = [
            BACKEND_PASSES(backend=backend, passes=", ".join(num(p) for p in r[backend][BIG_PASSES]))
            for backend in BACKENDS
            if BIG_PASSES in r[backend]
        ]
        notes.append(
            NOTE(
                name=name,
                speedup=speedup,
                big=ONNX_BATCH,
                met=met(speedup >= ONNX_SPEEDUP),
                passes=PASSES(passes="; ".join(listed)) if listed else "",
                single=r[f"onnx_speedup_batch_{SINGLE_BATCH}"],
                one=SINGLE_BATCH,
                same=f"{r['same_words']:,}",
                parity=f"{r['parity_images']:,}",
                difference=r["max_logit_difference"],
                bytes=f"{r['onnx_bytes']:,}",
                made_by=made_by(r),
            )
        )
        notes.extend(encoder_ceiling(name, r))
    return [*rows, "", *notes, ""]
