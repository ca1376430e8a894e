"""Standard caption metrics from pycocoevalcap (BLEU-1..4, METEOR, ROUGE-L, CIDEr).

METEOR runs the Java jar shipped with pycocoevalcap, so it needs a Java runtime; `caption_report` scores every
other metric where there is none and says why METEOR was skipped."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence

from imcaption.text.word_tokenizer import normalize


def meteor_unavailable() -> str | None:
    """Why METEOR cannot be scored here, or None where it can. Looked up before any scoring starts: without
    Java, pycocoevalcap's METEOR fails only once the other metrics are done, with a bare FileNotFoundError."""
    if shutil.which("java") is None:
        return "no Java runtime: `java` is not on PATH, and pycocoevalcap scores METEOR with a Java program"
    return None


def caption_scores(
    references: Mapping[int, Sequence[str]], hypotheses: Mapping[int, str], meteor: bool = True
) -> dict[str, float]:
    """Corpus scores of one hypothesis per image against its references. Text is normalized like the
    tokenizer (lower case, no punctuation), standing in for the PTB tokenizer's Java step. meteor=True needs
    Java (ValueError saying so without it); `caption_report` skips METEOR instead."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if set(references) != set(hypotheses):
        raise ValueError("references and hypotheses must cover the same images")
    missing_java = meteor_unavailable() if meteor else None
    if missing_java:
        raise ValueError(f"METEOR cannot be scored: {missing_java}")
    refs = {i: [" ".join(normalize(r)) for r in references[i]] for i in references}
    hyps = {i: [" ".join(normalize(hypotheses[i])) or "<empty>"] for i in hypotheses}
    bleu, _ = Bleu(4).compute_score(refs, hyps, verbose=0)
    scores = {f"bleu{n + 1}": float(b) for n, b in enumerate(bleu)}
    scores["rouge_l"] = float(Rouge().compute_score(refs, hyps)[0])
    scores["cider"] = float(Cider().compute_score(refs, hyps)[0])
    if meteor:
        from pycocoevalcap.meteor.meteor import Meteor

        scorer = Meteor()
        scores["meteor"] = float(scorer.compute_score(refs, hyps)[0])
    return scores


def caption_report(
    references: Mapping[int, Sequence[str]], hypotheses: Mapping[int, str]
) -> tuple[dict[str, float], dict[str, str]]:
    """Every metric that can be scored here, and the ones skipped with the reason (METEOR without Java)."""
    missing_java = meteor_unavailable()
    scores = caption_scores(references, hypotheses, meteor=missing_java is None)
    return scores, ({} if missing_java is None else {"meteor": missing_java})
