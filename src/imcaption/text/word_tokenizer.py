"""Words to ids for captions: the top-k words of the training captions (optionally only those seen at least N
times), the rest mapped to <unk>.

Text is lower-cased and stripped of punctuation before it is split on whitespace, as in the captioning
tutorial. Ids: <pad>=0, <unk>=1, <start>=2, <end>=3, then words by falling frequency (ties alphabetical)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch

PAD, UNK, START, END = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<start>", "<end>")
PUNCTUATION = re.compile(r"[!\"#$%&()*+.,\-/:;=?@\[\\\]^_`{|}~']")


def normalize(text: str) -> list[str]:
    return PUNCTUATION.sub(" ", text.lower()).split()


@dataclass(frozen=True)
class WordTokenizer:
    words: tuple[str, ...]
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        clash = set(self.words) & set(SPECIALS)
        if clash:
            raise ValueError(f"vocabulary may not contain the special tokens {sorted(clash)}")
        object.__setattr__(self, "index", {w: i for i, w in enumerate(SPECIALS + self.words)})

    @classmethod
    def fit(cls, captions: Iterable[str], top_k: int = 5000, min_count: int = 1) -> WordTokenizer:
        """The `top_k` most frequent words (specials not counted) of those seen at least `min_count` times; the
        rest become <unk>. The words are all a checkpoint keeps: <unk> is a special, so a fitted vocabulary
        comes back from `to_dict` whatever the counts were."""
        if top_k < 1 or min_count < 1:
            raise ValueError(f"top_k and min_count must be at least 1, got {top_k} and {min_count}")
        counts = Counter(word for caption in captions for word in normalize(caption))
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls(tuple(word for word, count in ranked[:top_k] if count >= min_count))

    @property
    def vocab_size(self) -> int:
        return len(SPECIALS) + len(self.words)

    def encode(self, caption: str) -> list[int]:
        """<start> words <end>; unknown words become <unk>."""
        return [START, *(self.index.get(w, UNK) for w in normalize(caption)), END]

    def word(self, token: int) -> str:
        """The text of one token id (specials as written, e.g. "<unk>")."""
        return SPECIALS[token] if token < len(SPECIALS) else self.words[token - len(SPECIALS)]

    def decode(self, ids: Sequence[int]) -> str:
        """Stops at <end>; drops <pad> and <start>; keeps <unk> visible."""
        words = []
        for token in ids:
            token = int(token)
            if token == END:
                break
            if token in (PAD, START):
                continue
            words.append(self.word(token))
        return " ".join(words)

    def batch(self, captions: Sequence[str], max_length: int | None = None) -> torch.Tensor:
        """(B, T) ids padded with <pad> to the longest caption (or cut to max_length, keeping <end>)."""
        encoded = [self.encode(c) for c in captions]
        if max_length is not None:
            encoded = [e if len(e) <= max_length else [*e[: max_length - 1], END] for e in encoded]
        width = max(len(e) for e in encoded)
        out = torch.full((len(encoded), width), PAD, dtype=torch.long)
        for row, ids in enumerate(encoded):
            out[row, : len(ids)] = torch.tensor(ids)
        return out

    def to_dict(self) -> dict:
        return {"words": list(self.words)}

    @classmethod
    def from_dict(cls, state: dict) -> WordTokenizer:
        return cls(tuple(state["words"]))
