"""Error analysis of a recognizer on the validation split of a generated set: where the misreads are.

    python -m bench.captcha_errors RUN/best.pt [--data data/words_captcha] [--name NAME]

Reads all validation images with the model's default reading (the answer file's search), then breaks exact match
down by face (the generator knows each image's face), word length, letter position and letter; lists the
confusions of each face (from the edit operations between the true and the read word), how confident the
misreads were, and draws 24 misread images with each letter's attention (greedy reading) into
docs/captcha_errors_<name>.png; reads a seeded sample of 20,000 training images too (not augmented), to tell a
model that cannot hold its training data from one that memorizes it. Writes bench/results/captcha_errors_<name>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a file, not with -m: make `bench` importable all the same
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.provenance import provenance
from imcaption.captcha.metrics import character_confusions
from imcaption.files import write_text_atomically

RESULTS = Path(__file__).parent / "results"
DOCS = Path(__file__).parent.parent / "docs"
SHEET_IMAGES = 24
FIT_SAMPLE, FIT_SEED = 20_000, 0  # training images read back, and the seed of their sample


def wrong_positions(truth: str, read: str) -> set[int]:
    """Positions of `truth` the reading got wrong (an extra letter is charged to the position it comes before),
    from the Levenshtein edit operations."""
    from rapidfuzz.distance import Levenshtein

    return {min(op.src_pos, len(truth) - 1) for op in Levenshtein.editops(truth, read)}


def rate_table(groups: dict, correct: dict) -> dict:
    return {str(key): {"count": groups[key], "exact_match": round(correct[key] / groups[key], 6)}
            for key in sorted(groups)}  # fmt: skip


def breakdown(truths: list[str], reads: list[str], faces: list[str]) -> dict:
    """Exact match by face and length, letter error rates by position and letter, confusions by face."""
    by_face, by_face_ok = Counter(faces), Counter(f for f, t, r in zip(faces, truths, reads, strict=True) if t == r)
    lengths = Counter(len(t) for t in truths)
    lengths_ok = Counter(len(t) for t, r in zip(truths, reads, strict=True) if t == r)
    positions, positions_wrong = Counter(), Counter()
    letters, letters_wrong = Counter(), Counter()
    for truth, read in zip(truths, reads, strict=True):
        positions.update(range(len(truth)))
        letters.update(truth)
        if truth != read:
            wrong = wrong_positions(truth, read)
            positions_wrong.update(wrong)
            letters_wrong.update(truth[i] for i in wrong)
    readings_by_face: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for truth, read, face in zip(truths, reads, faces, strict=True):
        readings_by_face[face][0].append(read)
        readings_by_face[face][1].append(truth)
    confusions = {
        face: [[f"{t or '∅'}->{r or '∅'}", n] for t, r, n in character_confusions(face_reads, face_truths, top=12)]
        for face, (face_reads, face_truths) in sorted(readings_by_face.items())
    }
    return {
        "by_face": rate_table(by_face, by_face_ok),
        "by_length": rate_table(lengths, lengths_ok),
        "letter_error_by_position": {str(p): round(positions_wrong[p] / positions[p], 6) for p in sorted(positions)},
        "letter_error_by_letter": {c: round(letters_wrong[c] / letters[c], 6) for c in sorted(letters)},
        "confusions_by_face": {face: pairs for face, pairs in confusions.items() if pairs},
    }


def confidence_summary(confidences: np.ndarray, correct: np.ndarray) -> dict:
    """How sure the model was of its misreads: quantiles, and the share of misreads a threshold would catch."""
    summary = {}
    for name, mask in (("misread", ~correct), ("correct", correct)):
        values = confidences[mask]
        quantiles = np.quantile(values, [0.1, 0.5, 0.9]).round(4).tolist() if len(values) else []
        summary[f"{name}_confidence_p10_p50_p90"] = quantiles
    for threshold in (0.5, 0.8, 0.95):
        below = confidences < threshold
        summary[f"below_{threshold}"] = {
            "share_of_misreads": round(float((below & ~correct).sum() / max(1, (~correct).sum())), 4),
            "share_of_correct": round(float((below & correct).sum() / max(1, correct.sum())), 4),
        }
    return summary


def draw_sheet(recognizer, dataset, ids: list[int], truths: dict[int, str], faces: dict[int, str],
               out: Path) -> None:  # fmt: skip
    """24 misread images, each with the sum of its letters' attention (greedy reading) over it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [dataset.image_path(i) for i in ids]
    pixels = recognizer.inputs(paths)
    readings = recognizer.read(list(pixels), beam=1, attention=True)
    columns = 4
    rows = (len(ids) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 1.9 * rows))
    for ax in np.atleast_1d(axes).ravel():
        ax.axis("off")
    for ax, index, image, reading in zip(np.atleast_1d(axes).ravel(), ids, pixels, readings, strict=False):
        height, width = image.shape[:2]
        ax.imshow(image)
        if reading.attention is not None:
            ax.imshow(reading.attention[: len(reading.word) + 1].sum(axis=0), cmap="inferno", alpha=0.45,
                      extent=(0, width, height, 0), interpolation="bilinear")  # fmt: skip
        ax.set_title(f"a{index} ({faces[index]}): {truths[index]} -> {reading.word or '∅'}", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)


def training_fit(recognizer: Any, cache: Any, dataset: Any, beam: int, count: int = FIT_SAMPLE) -> dict:
    """Exact match on a seeded sample of training images as they are stored (no augmentation), beside validation's:
    near validation's, the model cannot even hold the images it learned from (it needs capacity or steps, not
    regularization); well above it, it is memorizing."""
    from imcaption.captcha.cached_reading import read_cached

    train = np.asarray(dataset.split("train").indices)
    rows = np.sort(np.random.default_rng(FIT_SEED).choice(len(train), min(count, len(train)), replace=False))
    words = read_cached(recognizer, cache, train[rows], beam=beam, progress=False).words
    labels = [dataset.labels[int(i)] for i in train[rows]]
    return {"train_sample_images": len(rows), "train_sample_exact_match":
            round(sum(w == t for w, t in zip(words, labels, strict=True)) / len(rows), 6)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--data", default="data/words_captcha")
    parser.add_argument("--name", default=None, help="results name (default: the run folder's name)")
    parser.add_argument("--shared", action="store_true", help="record that other work shared the cores")
    args = parser.parse_args()
    made_by = provenance(args.shared)

    from imcaption import Recognizer
    from imcaption.captcha.cached_reading import read_cached, search_name
    from imcaption.captcha.dataset import CaptchaDataset
    from imcaption.captcha.generator import STYLES, face_for_index
    from imcaption.captcha.image_cache import ensure_cache
    from imcaption.captcha.vocabulary import default_vocabulary
    from imcaption.manifest import read_manifest

    name = args.name or Path(args.checkpoint).parent.name
    manifest = read_manifest(args.data) or {}
    if not manifest.get("complete"):
        raise SystemExit(f"{args.data}: not a complete generated set; faces are known only for generated images")
    style = STYLES[manifest["style"]["name"]]
    recognizer = Recognizer.load(args.checkpoint)
    dataset = CaptchaDataset.open(args.data)
    val = list(dataset.split("val").indices)
    beam = recognizer.answer_beam
    cache = ensure_cache(dataset, recognizer.size)
    readings = read_cached(recognizer, cache, val, beam=beam)
    truths = dataset.words(dataset.split("val"))
    faces = [face_for_index(default_vocabulary(), manifest["seed"], i, style) for i in val]
    correct = np.array([t == r for t, r in zip(truths, readings.words, strict=True)])
    misread = [i for i, ok in zip(val, correct, strict=True) if not ok]
    picked = misread[:: max(1, len(misread) // SHEET_IMAGES)][:SHEET_IMAGES]
    sheet = DOCS / f"captcha_errors_{name}.png"
    draw_sheet(recognizer, dataset, picked, dict(zip(val, truths, strict=True)), dict(zip(val, faces, strict=True)),
               sheet)  # fmt: skip
    result = {
        **made_by,
        "checkpoint": args.checkpoint,
        "data": args.data,
        "seed": manifest["seed"],
        "reading": search_name(beam),
        "images": len(val),
        "exact_match": round(float(correct.mean()), 6),
        **breakdown(truths, readings.words, faces),
        **confidence_summary(np.asarray(readings.confidences), correct),
        **training_fit(recognizer, cache, dataset, beam),
        "sheet": str(sheet.relative_to(DOCS.parent)),
        "sheet_ids": [f"a{i}" for i in picked],
    }
    out = RESULTS / f"captcha_errors_{name}.json"
    write_text_atomically(out, json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {out} and {sheet}: exact match {result['exact_match']:.4%} ({len(misread):,} misread)")


if __name__ == "__main__":
    main()
