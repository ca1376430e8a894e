"""Where a recognizer's misreads are (bench/captcha_errors.py): by face, length, position and letter."""

from __future__ import annotations

from bench.report.definitions import CONFIDENCE_THRESHOLD
from bench.report.formats import pct, points
from bench.report.provenance import made_by
from bench.report.template import Prose

WORST_LETTERS, CONFUSIONS_PER_FACE = 8, 6
QUANTILES = "p10_p50_p90"  # the confidence quantiles recorded, by their field names

HEADING = Prose("## Where the misreads are (`bench/captcha_errors.py` → `results/captcha_errors_*.json`)")
TITLE = Prose("### `{name}`: {share} of {images} validation images ({reading})")
FACES = Prose("- By face (images): {faces}.")
FACE = Prose("{face} {share} ({count})")
LENGTHS = Prose("- By word length: {lengths}.")
LENGTH = Prose("{length} letters {share}")
POSITIONS = Prose("- Letter error rate by position: {positions}. Worst letters: {letters}.")
POSITION = Prose("{position}: {share}")
LETTER = Prose("`{letter}` {share}")
CONFUSIONS = Prose("- Confusions (true->read, ∅ a missing or extra letter) by face: {confusions}.")
FACE_CONFUSIONS = Prose("{face}: {pairs}")
PAIR = Prose("{pair} ×{count}")
CONFIDENCE = Prose(
    "- Confidence of misreads {quantiles}: {misread}; of correct readings: {correct}. Below {threshold}: "
    "{below_misreads} of misreads, {below_correct} of correct readings."
)
FIT = Prose(
    "- Training images read back (a seeded sample of {images}, not augmented): {share}, {gap} points from validation."
)
SHEET = Prose("- {count} misreads with their attention: [{sheet}]({sheet}).")
MADE = Prose("- Made by: {made_by}; data seed {seed}.")


def fit_line(r: dict) -> list[str]:
    """How well the model reads the images it trained on (not augmented), beside validation."""
    if "train_sample_exact_match" not in r:
        return []
    gap = points(r["train_sample_exact_match"] - r["exact_match"])
    return [FIT(images=f"{r['train_sample_images']:,}", share=pct(r["train_sample_exact_match"]), gap=gap)]


def quantiles(values: list[float]) -> str:
    return " / ".join(f"{q:.3f}" for q in values)


def run_lines(name: str, r: dict) -> list[str]:
    faces = ", ".join(
        FACE(face=f, share=pct(v["exact_match"]), count=f"{v['count']:,}") for f, v in r["by_face"].items()
    )
    lengths = ", ".join(LENGTH(length=n, share=pct(v["exact_match"])) for n, v in r["by_length"].items())
    positions = ", ".join(POSITION(position=int(p) + 1, share=pct(v)) for p, v in r["letter_error_by_position"].items())
    worst = sorted(r["letter_error_by_letter"].items(), key=lambda item: -item[1])[:WORST_LETTERS]
    confusions = "; ".join(
        FACE_CONFUSIONS(face=face, pairs=", ".join(PAIR(pair=pair, count=n) for pair, n in pairs[:CONFUSIONS_PER_FACE]))
        for face, pairs in r["confusions_by_face"].items()
    )
    below = r[f"below_{CONFIDENCE_THRESHOLD:g}"]
    return [
        TITLE(name=name, share=pct(r["exact_match"]), images=f"{r['images']:,}", reading=r["reading"]),
        "",
        FACES(faces=faces),
        LENGTHS(lengths=lengths),
        POSITIONS(positions=positions, letters=", ".join(LETTER(letter=c, share=pct(v)) for c, v in worst)),
        CONFUSIONS(confusions=confusions),
        CONFIDENCE(
            quantiles=QUANTILES.replace("_", " / "),
            misread=quantiles(r[f"misread_confidence_{QUANTILES}"]),
            correct=quantiles(r[f"correct_confidence_{QUANTILES}"]),
            threshold=f"{CONFIDENCE_THRESHOLD:g}",
            below_misreads=pct(below["share_of_misreads"]),
            below_correct=pct(below["share_of_correct"]),
        ),
        *fit_line(r),
        SHEET(count=len(r["sheet_ids"]), sheet=r["sheet"]),
        MADE(made_by=made_by(r, with_cpu=True), seed=r["seed"]),
        "",
    ]


def errors_section(results: dict[str, dict]) -> list[str]:
    rows = [line for name, r in sorted(results.items()) for line in run_lines(name, r)]
    return [HEADING(), "", *rows] if rows else []
