"""Test-time augmentation measured on validation: each image also read shifted by a few pixels, the copies'
letter log-probabilities averaged at every step (imcaption.models.views), for a finished run.

    python -m bench.captcha_views RUN [--data data/words_captcha] [--name NAME] [--shifts 1 2]

Reads the whole validation split with greedy search: the image alone (1 view), 3 views (left/right) at each
shift, 5 views (and up/down) at the best 3-view shift; then the best of those with the open beam and with the
answer file's search over the training labels (beam 5), beside the same searches on one view. Writes
bench/results/captcha_views_<name>.json: exact match and images/s of each reading. Nothing is trained, and the
test split is never read: the choice is made on validation only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file, not with -m: make `bench` importable all the same
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from typing import TYPE_CHECKING

from imcaption.files import write_text_atomically

if TYPE_CHECKING:
    from imcaption.captcha.dataset import Split
    from imcaption.captcha.image_cache import ImageCache
    from imcaption.captcha.recognizer import TorchRecognizer
    from imcaption.engine.search import LexiconTrie

RESULTS = Path(__file__).parent / "results"


def measure(
    recognizer: TorchRecognizer,
    cache: ImageCache,
    split: Split,
    truth: list[str],
    views: int,
    shift: int,
    beam: int,
    lexicon: LexiconTrie | None,
    name: str,
) -> dict:
    from imcaption.captcha.cached_reading import read_cached
    from imcaption.captcha.metrics import exact_match

    recognizer.view_shift = shift
    start = time.perf_counter()
    decoded = read_cached(recognizer, cache, split.indices, beam=beam, lexicon=lexicon, progress=False, views=views)
    seconds = time.perf_counter() - start
    row = {
        "search": name,
        "views": views,
        "shift_px": shift if views > 1 else 0,
        "beam": beam,
        "val_exact_match": round(exact_match(decoded.words, truth), 5),
        "images_per_s": round(len(truth) / seconds, 1),
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--data", default="data/words_captcha")
    parser.add_argument("--name", default=None, help="results name (default: the run folder's name)")
    parser.add_argument("--shifts", type=int, nargs="+", default=[1, 2], help="pixel shifts tried with 3 views")
    parser.add_argument("--val-limit", type=int, default=0, help="read the first N validation images only (0: all)")
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    args = parser.parse_args()

    from bench.provenance import provenance
    from imcaption.captcha.dataset import CaptchaDataset, Split
    from imcaption.captcha.image_cache import ensure_cache
    from imcaption.captcha.pipeline import LEXICON_BEAM
    from imcaption.captcha.reading_types import ANSWER_BEAM
    from imcaption.captcha.recognizer import TorchRecognizer

    made_by = provenance(args.shared)
    run = Path(args.run)
    recognizer = TorchRecognizer.load(run / "best.pt")
    dataset = CaptchaDataset.open(args.data)
    cache = ensure_cache(dataset, recognizer.size, progress=False)
    val = dataset.split("val")
    if args.val_limit:
        val = Split(val.name, val.indices[: args.val_limit])
    truth = dataset.words(val)
    words = sorted(set(dataset.words(dataset.split("train"))))
    lexicon = recognizer.lexicon(words)

    def read(views: int, shift: int, beam: int = 1, held: bool = False) -> dict:
        name = ("greedy" if beam == 1 else f"beam {beam}") + (" over the training labels" if held else "")
        return measure(recognizer, cache, val, truth, views, shift, beam, lexicon if held else None, name)

    greedy = [read(1, 0)] + [read(3, shift) for shift in args.shifts]
    best_shift = max(greedy[1:], key=lambda r: r["val_exact_match"])["shift_px"]
    greedy.append(read(5, best_shift))
    best = max(greedy, key=lambda r: (r["val_exact_match"], -r["views"]))
    searched = [read(1, 0, ANSWER_BEAM), read(1, 0, LEXICON_BEAM, held=True)]
    if best["views"] > 1:
        searched += [
            read(best["views"], best["shift_px"], ANSWER_BEAM),
            read(best["views"], best["shift_px"], LEXICON_BEAM, held=True),
        ]
    out = {
        **made_by,
        "run": str(run),
        "val_images": len(truth),
        "precision": recognizer.precision,
        "best_greedy": {"views": best["views"], "shift_px": best["shift_px"]},
        "rows": greedy + searched,
    }
    name = args.name or run.name
    write_text_atomically(RESULTS / f"captcha_views_{name}.json", json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
