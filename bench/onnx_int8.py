"""The int8 ONNX export against the fp32 one: validation accuracy, readings that differ, speed.

    python -m bench.onnx_int8 runs/bench_sat_60/best.pt --name sat_60   # -> bench/results/onnx_int8_sat_60.json

Exports the checkpoint (`export --onnx`) and quantizes that export as `export --onnx --int8 DATA` does
(calibrated on the training split), reads the whole validation split with both in ONNX Runtime, and times both on
the same images: batch 256 with ONNX Runtime's default threads (one per core), batch 1 likewise, and batch 4 on
one thread, about what each worker process of the service runs. Passes alternate between the two models. Run it
on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a file, not with -m: make `bench` importable all the same
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.onnx_speed import batch_speed, single_latency
from bench.timing import PASSES
from imcaption.files import write_text_atomically

RESULTS = Path(__file__).parent / "results"


def accuracy(words: list[str], truth: list[str]) -> float:
    return round(100 * sum(w == t for w, t in zip(words, truth, strict=True)) / len(truth), 2)


def read_words(reader, pixels: np.ndarray, batch: int = 256) -> list[str]:
    """Greedy words for `pixels`, a batch at a time (one call on the whole split would hold every image's
    activations at once)."""
    return [
        word
        for start in range(0, len(pixels), batch)
        for word in reader.decode_pixels(pixels[start : start + batch]).words
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--data", default="data/words_captcha")
    parser.add_argument("--name", required=True, help="writes onnx_int8_<name>.json")
    parser.add_argument("--speed-images", type=int, default=5_120, help="validation images for the timings")
    parser.add_argument("--single", type=int, default=500, help="single-image calls for the batch-1 latency")
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    args = parser.parse_args()

    from bench.provenance import provenance
    from imcaption.captcha.dataset import CaptchaDataset
    from imcaption.captcha.image_cache import ensure_cache
    from imcaption.deploy.onnx_export import export_onnx
    from imcaption.deploy.onnx_reader import OnnxRecognizer
    from imcaption.deploy.quantize import quantize_export

    made_by = provenance(args.shared)
    with tempfile.TemporaryDirectory() as folder:
        fp32 = export_onnx(args.checkpoint, Path(folder) / "fp32.onnx")
        paths = {"fp32": fp32, "int8": quantize_export(fp32, Path(folder) / "int8.onnx", args.data)}
        sizes = {kind: path.stat().st_size for kind, path in paths.items()}
        readers = {kind: OnnxRecognizer.load(path) for kind, path in paths.items()}
        single_thread = {kind: OnnxRecognizer.load(path, threads=1) for kind, path in paths.items()}
    dataset = CaptchaDataset.open(args.data)
    val = dataset.split("val")
    pixels = ensure_cache(dataset, readers["fp32"].size).read(list(val.indices))
    truth = dataset.words(val)
    words = {kind: read_words(reader, pixels) for kind, reader in readers.items()}

    timed = pixels[: args.speed_images]
    batch_256: dict[str, list[float]] = {kind: [] for kind in readers}
    batch_4_one_thread: dict[str, list[float]] = {kind: [] for kind in readers}
    for _ in range(PASSES):
        for kind in readers:
            batch_256[kind].append(round(batch_speed(readers[kind].decode_pixels, timed, 256), 1))
            batch_4_one_thread[kind].append(round(batch_speed(single_thread[kind].decode_pixels, timed[:1024], 4), 1))
    speeds = {
        kind: {
            "onnx_bytes": sizes[kind],
            "val_accuracy": accuracy(words[kind], truth),
            "batch_256_images_per_s": statistics.median(batch_256[kind]),
            "batch_256_passes_images_per_s": batch_256[kind],
            "batch_4_one_thread_images_per_s": statistics.median(batch_4_one_thread[kind]),
            "batch_4_one_thread_passes_images_per_s": batch_4_one_thread[kind],
            "batch_1": single_latency(readers[kind].decode_pixels, timed[: args.single]),
        }
        for kind in readers
    }
    result = {
        "model": readers["fp32"].config.kind,
        "checkpoint": args.checkpoint,
        "calibration_images": readers["int8"].described["calibration_images"],
        "val_images": len(truth),
        "differing_words": sum(a != b for a, b in zip(words["fp32"], words["int8"], strict=True)),
        **speeds,
        "int8_speedup_batch_256": round(
            speeds["int8"]["batch_256_images_per_s"] / speeds["fp32"]["batch_256_images_per_s"], 2
        ),
        "int8_speedup_batch_4_one_thread": round(
            speeds["int8"]["batch_4_one_thread_images_per_s"] / speeds["fp32"]["batch_4_one_thread_images_per_s"], 2
        ),
        **made_by,
    }
    write_text_atomically(RESULTS / f"onnx_int8_{args.name}.json", json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
