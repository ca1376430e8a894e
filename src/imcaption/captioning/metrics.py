"""Standard caption metrics from pycocoevalcap (BLEU-1..4, METEOR, ROUGE-L, CIDEr).

METEOR runs the Java jar shipped with pycocoevalcap; pass meteor=False where no Java is installed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from imcaption.text.word_tokenizer import normalize


def caption_scores(
    references: Mapping[int, Sequence[str]], hypotheses: Mapping[int, str], meteor: bool = True
) -> dict[str, float]:
    """Corpus scores of one hypothesis per image against its references. Text is normalized like the
    tokenizer (lower case, no punctuation), standing in for the PTB tokenizer's Java step."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if set(references) != set(hypotheses):
        raise ValueError("references and hypotheses must cover the same images")
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
