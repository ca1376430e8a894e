"""Inference speed of a trained recognizer and where its time goes.

    python -m bench.infer_profile runs/bench_sat/best.pt --name sat   # -> bench/results/infer_profile_sat.json

Reads the first --count validation images from the cache in batches of --batch (the reader's default, 64),
greedily or with --beam K (answer files use the model's answer beam, 3 for sat), reports images/s and
microseconds per image, then profiles --profile-batches batches with torch.profiler and groups the operators'
own CPU time: convolutions, matrix products (linear layers, attention, recurrent cells), normalization and
activations, and the rest. Images/s is the median of three timed passes (bench/timing.py). Run it on an idle
machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file, not with -m: make `bench` importable all the same
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from imcaption.files import write_text_atomically

RESULTS = Path(__file__).parent / "results"
GROUPS = {
    # mkldnn::_convolution_pointwise is a convolution with its ReLU fused (FusedConvReLU).
    "convolution": ("conv", "mkldnn_convolution", "_convolution_pointwise"),
    "matrix products (linear, attention, recurrent cells)": ("addmm", "mm", "bmm", "matmul", "linear", "gru", "lstm"),
    "normalization, activations, softmax": ("norm", "relu", "gelu", "tanh", "sigmoid", "softmax", "max_pool"),
}


def group_of(operator: str) -> str:
    name = operator.lower().removeprefix("aten::")
    for group, keys in GROUPS.items():
        if any(key == name or name.startswith(key) or name.endswith(key) for key in keys):
            return group
    return "everything else (copies, indexing, the search loop's small operators)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--name", required=True)
    parser.add_argument("--data", default="data/words_captcha")
    parser.add_argument("--count", type=int, default=10_000, help="validation images to time")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--beam", type=int, default=1, help="beam width (default: 1, greedy)")
    parser.add_argument("--profile-batches", type=int, default=8)
    parser.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default="fp32",
        help="read in this number format; bf16 also counts the words that differ from fp32's",
    )
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    args = parser.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile

    from bench.provenance import provenance
    from bench.timing import median_rate
    from imcaption.api import Recognizer
    from imcaption.captcha.cached_reading import read_cached, search_name
    from imcaption.captcha.dataset import CaptchaDataset
    from imcaption.captcha.image_cache import ensure_cache
    from imcaption.images import as_batch

    made_by = provenance(args.shared)
    dataset = CaptchaDataset.open(args.data)
    recognizer = Recognizer.load(args.checkpoint, precision=args.precision)
    cache = ensure_cache(dataset, recognizer.size)
    ids = list(dataset.split("val").indices)[: args.count]
    read_cached(recognizer, cache, ids[: args.batch], args.batch, args.beam, progress=False)  # warm-up
    words = read_cached(recognizer, cache, ids, args.batch, args.beam, progress=False).words
    rate, passes = median_rate(
        lambda: len(read_cached(recognizer, cache, ids, args.batch, args.beam, progress=False).words)
    )
    truth = dataset.words(dataset.split("val"))[: len(ids)]
    fp32_words = words
    if args.precision != "fp32":
        fp32_reader = Recognizer.load(args.checkpoint, precision="fp32")
        fp32_words = read_cached(fp32_reader, cache, ids, args.batch, args.beam, progress=False).words

    batches = [
        as_batch(cache.read(ids[i : i + args.batch])) for i in range(0, args.batch * args.profile_batches, args.batch)
    ]
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for images in batches:
            recognizer.decode(images, args.beam)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    grouped: dict[str, float] = {}
    for event in events:
        group = group_of(event.key)
        grouped[group] = grouped.get(group, 0.0) + event.self_cpu_time_total
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:10]
    result = {
        "model": recognizer.config.kind,
        "checkpoint": args.checkpoint,
        "images": len(ids),
        "batch": args.batch,
        "precision": args.precision,
        "search": search_name(args.beam),
        "exact_match": sum(w == t for w, t in zip(words, truth, strict=True)) / len(ids),
        "words_differing_from_fp32": sum(w != f for w, f in zip(words, fp32_words, strict=True)),
        "threads": torch.get_num_threads(),
        "images_per_s": rate,
        "passes_images_per_s": passes,
        "microseconds_per_image": round(1e6 / rate, 1),
        "time_share": {
            group: round(value / total, 4) for group, value in sorted(grouped.items(), key=lambda kv: -kv[1])
        },
        "top_operators": [{"operator": e.key, "share": round(e.self_cpu_time_total / total, 4)} for e in top],
        **made_by,
    }
    out = RESULTS / f"infer_profile_{args.name}.json"
    write_text_atomically(out, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
