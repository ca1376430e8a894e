"""Word-recognition metrics: exact match, character error rate, accuracy by length, confusions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from rapidfuzz.distance import Levenshtein


@dataclass
class RecognitionReport:
    count: int
    exact_match: float
    cer: float
    by_length: dict[int, float]
    confusions: list[tuple[str, str, int]] = field(default_factory=list)
    misread: list[tuple[int, str, str]] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "count": self.count,
            "exact_match": self.exact_match,
            "cer": self.cer,
            "by_length": {str(k): v for k, v in self.by_length.items()},
            "top_confusions": [{"true": t, "read": r, "count": n} for t, r, n in self.confusions],
        }


def exact_match(predictions: Sequence[str], truths: Sequence[str]) -> float:
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predictions for {len(truths)} labels")
    if not truths:
        return 0.0
    return sum(p == t for p, t in zip(predictions, truths, strict=True)) / len(truths)


def character_error_rate(predictions: Sequence[str], truths: Sequence[str]) -> float:
    """Edit distance summed over all words, over the number of true characters."""
    edits = sum(Levenshtein.distance(p, t) for p, t in zip(predictions, truths, strict=True))
    return edits / max(1, sum(len(t) for t in truths))


def character_confusions(
    predictions: Sequence[str], truths: Sequence[str], top: int = 10
) -> list[tuple[str, str, int]]:
    """Most frequent (true char, read char) substitutions; '' stands for an inserted or deleted char."""
    counts: Counter[tuple[str, str]] = Counter()
    for p, t in zip(predictions, truths, strict=True):
        if p == t:
            continue
        for op in Levenshtein.editops(t, p):
            true_char = t[op.src_pos] if op.tag != "insert" else ""
            read_char = p[op.dest_pos] if op.tag != "delete" else ""
            counts[(true_char, read_char)] += 1
    return [(a, b, n) for (a, b), n in counts.most_common(top)]


def recognition_report(ids: Sequence[int], predictions: Sequence[str], truths: Sequence[str]) -> RecognitionReport:
    by_length: dict[int, list[bool]] = {}
    for p, t in zip(predictions, truths, strict=True):
        by_length.setdefault(len(t), []).append(p == t)
    return RecognitionReport(
        count=len(truths),
        exact_match=exact_match(predictions, truths),
        cer=character_error_rate(predictions, truths),
        by_length={n: sum(v) / len(v) for n, v in sorted(by_length.items())},
        confusions=character_confusions(predictions, truths),
        misread=[(i, t, p) for i, p, t in zip(ids, predictions, truths, strict=True) if p != t],
    )
