"""Benchmark: generate the full synthetic words_captcha set and build its image cache.

    python -m bench.captcha_data [--data data/words_captcha] [--count 140000] [--stage all|generate|cache]

Writes bench/results/captcha_data.json. Generation is timed only when the set is drawn from scratch;
run it on an empty --data folder for an honest figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from bench.provenance import provenance
from imcaption.files import write_text_atomically

RESULTS = Path(__file__).parent / "results" / "captcha_data.json"


def load_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def save_results(results: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(RESULTS, json.dumps(results, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/words_captcha")
    parser.add_argument("--count", type=int, default=140_000)
    parser.add_argument("--stage", choices=["all", "generate", "cache"], default="all")
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    args = parser.parse_args()

    from imcaption.captcha.generator import CaptchaStyle, generate_dataset
    from imcaption.captcha.vocabulary import default_vocabulary

    results = load_results()
    results.update({"images": args.count, "style": CaptchaStyle().name, **provenance(args.shared)})
    if args.stage in ("all", "generate"):
        start = time.perf_counter()
        drawn = generate_dataset(args.data, default_vocabulary(), count=args.count, seed=0)
        seconds = time.perf_counter() - start
        if drawn != args.count:
            raise SystemExit(f"{args.count - drawn} images already existed: use an empty --data folder")
        results["generate_seconds"] = round(seconds, 1)
        results["generate_images_per_s"] = round(args.count / seconds, 1)
        results["dataset_bytes"] = sum(p.stat().st_size for p in Path(args.data).glob("a*.png"))
        save_results(results)
    if args.stage in ("all", "cache"):
        from imcaption.captcha.dataset import CaptchaDataset
        from imcaption.captcha.image_cache import build_cache

        dataset = CaptchaDataset.open(args.data)
        start = time.perf_counter()
        cache = build_cache(dataset, force=True)
        seconds = time.perf_counter() - start
        results["cache_seconds"] = round(seconds, 1)
        results["cache_images_per_s"] = round(args.count / seconds, 1)
        results["cache_bytes"] = cache.data_path.stat().st_size
        results["cache_shape"] = list(cache.shape)
    # ru_maxrss covers this whole process, so the figure belongs to the stages run in it.
    results[f"{args.stage}_peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
    results.pop("peak_rss_gb", None)
    save_results(results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
