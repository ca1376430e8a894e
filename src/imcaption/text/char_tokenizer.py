"""Characters to ids and back. Ids 0-2 are reserved: <pad>=0, <start>=1, <end>=2; CTC uses 0 as blank."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PAD, START, END = 0, 1, 2
SPECIALS = ("<pad>", "<start>", "<end>")


@dataclass(frozen=True)
class CharTokenizer:
    charset: str = "abcdefghijklmnopqrstuvwxyz"
    max_length: int = 5

    def __post_init__(self) -> None:
        if len(set(self.charset)) != len(self.charset):
            raise ValueError("charset has repeated characters")

    @property
    def vocab_size(self) -> int:
        return len(SPECIALS) + len(self.charset)

    @classmethod
    def fit(cls, words: Sequence[str]) -> CharTokenizer:
        """Every character the words use (sorted by code point) and the longest word's length."""
        if not words:
            raise ValueError("cannot fit a tokenizer to no words")
        return cls("".join(sorted(set("".join(words)))), max(len(word) for word in words))

    def can_write(self, word: str) -> bool:
        return len(word) <= self.max_length and all(char in self.charset for char in word)

    def encode(self, word: str) -> list[int]:
        ids = []
        for char in word:
            position = self.charset.find(char)
            if position < 0:
                raise ValueError(f"{word!r}: character {char!r} is not in the charset")
            ids.append(position + len(SPECIALS))
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Stops at <end>; skips <pad> and <start>."""
        chars = []
        for token in ids:
            token = int(token)
            if token == END:
                break
            if token >= len(SPECIALS):
                chars.append(self.charset[token - len(SPECIALS)])
        return "".join(chars)

    def batch_targets(self, words: Sequence[str]) -> torch.Tensor:
        """(B, max_length + 1) ids: each word then <end>, padded with <pad>."""
        import torch  # training's targets only: reading an .onnx model loads this tokenizer without torch

        targets = torch.full((len(words), self.max_length + 1), PAD, dtype=torch.long)
        for row, word in enumerate(words):
            ids = self.encode(word)[: self.max_length] + [END]
            targets[row, : len(ids)] = torch.tensor(ids)
        return targets

    def to_dict(self) -> dict:
        return {"charset": self.charset, "max_length": self.max_length}

    @classmethod
    def from_dict(cls, state: dict) -> CharTokenizer:
        return cls(state["charset"], int(state["max_length"]))
