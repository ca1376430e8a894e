"""Deployment: the int8 ONNX export against the fp32 one (bench/onnx_int8.py)."""

from __future__ import annotations

from bench.report.definitions import ONNX_BATCH, SINGLE_BATCH, TIMING_PASSES, WORKER_BATCH
from bench.report.formats import num
from bench.report.onnx import BIG, LATENCY, ONE, label
from bench.report.provenance import commit, made_by
from bench.report.template import Prose

SMALL = f"batch_{WORKER_BATCH}_one_thread_images_per_s"  # the small batch on one thread, field and speedup
SCRIPT, PREFIX = "bench/onnx_int8.py", "onnx_int8_"  # the benchmark and its results' file names
HEADING = Prose("## Deployment: the int8 ONNX export (`{script}` → `results/{prefix}<name>.json`)")
INTRO = Prose(
    "`imcaption captcha export CKPT --onnx M.onnx --int8 DATA` quantizes the encoder's convolutions (weights per "
    "channel, activations per tensor, ranges calibrated on training images) and keeps the decoding steps in fp32. "
    "Both exports of one checkpoint read the whole validation split in ONNX Runtime; batch {big} on the {cores} "
    "cores and batch {small} on one thread (about what each worker of the service runs) are medians of {passes} "
    "passes alternating between the two."
)
HEADER = Prose(
    "| model | CPU | export | .onnx bytes | validation accuracy | batch {big} images/s | batch {small}, one thread "
    "| batch {one} {low} | batch {one} {high} | commit |\n|---|---|---|---|---|---|---|---|---|---|"
)
ROW = Prose(
    "| `{name}` ({model}) | {cpu} | {export} | {bytes} | {accuracy:.2f} % | {big} | {small} | {low} ms | {high} ms "
    "| {commit} |"
)
NOTE = Prose(
    "- `{name}`: int8 {speedup}x fp32 at batch {big}, {small_speedup}x at batch {small} on one thread; {differing} of "
    "{images} validation words differ between the two, accuracy {difference:+.2f} points; calibrated on "
    "{calibration} training images. Made by: {made_by}."
)


def int8_section(results: dict[str, dict]) -> list[str]:
    if not results:
        return []
    cores = "/".join(map(str, sorted({r["nproc"] for r in results.values()})))
    rows = [
        HEADING(script=SCRIPT, prefix=PREFIX),
        "",
        INTRO(big=ONNX_BATCH, cores=cores, small=WORKER_BATCH, passes=TIMING_PASSES),
        "",
        HEADER(big=ONNX_BATCH, small=WORKER_BATCH, one=SINGLE_BATCH, low=label(LATENCY[0]), high=label(LATENCY[1])),
    ]
    notes = []
    for name, r in results.items():
        for export in ("fp32", "int8"):
            b = r[export]
            rows.append(
                ROW(
                    name=name,
                    model=r["model"],
                    cpu=r["cpu"],
                    export=export,
                    bytes=f"{b['onnx_bytes']:,}",
                    accuracy=b["val_accuracy"],
                    big=num(b[BIG]),
                    small=num(b[SMALL]),
                    low=b[ONE][LATENCY[0]],
                    high=b[ONE][LATENCY[1]],
                    commit=commit(r),
                )
            )
        notes.append(
            NOTE(
                name=name,
                speedup=r[f"int8_speedup_batch_{ONNX_BATCH}"],
                big=ONNX_BATCH,
                small_speedup=r[f"int8_speedup_{SMALL.removesuffix('_images_per_s')}"],
                small=WORKER_BATCH,
                differing=f"{r['differing_words']:,}",
                images=f"{r['val_images']:,}",
                difference=r["int8"]["val_accuracy"] - r["fp32"]["val_accuracy"],
                calibration=r["calibration_images"],
                made_by=made_by(r),
            )
        )
    return [*rows, "", *notes, ""]
