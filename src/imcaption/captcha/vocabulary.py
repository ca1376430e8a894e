"""Word lists: the default captcha vocabulary and user-supplied ones."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

CAPTCHA_WORD = re.compile(r"^[a-z]{3,5}$")


def default_vocabulary() -> list[str]:
    text = (resources.files("imcaption") / "captcha" / "words.txt").read_text(encoding="utf-8")
    return _parse_words(text.splitlines(), "<default vocabulary>")


def read_vocabulary(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"word list not found: {path}")
    return _parse_words(path.read_text(encoding="utf-8").splitlines(), str(path))


def _parse_words(lines: list[str], source: str) -> list[str]:
    words: list[str] = []
    seen: set[str] = set()
    for line_no, line in enumerate(lines, start=1):
        word = line.strip()
        if not word:
            continue
        if not CAPTCHA_WORD.match(word):
            raise ValueError(f"{source}:{line_no}: {word!r} is not 3-5 lowercase letters a-z")
        if word not in seen:
            seen.add(word)
            words.append(word)
    if not words:
        raise ValueError(f"{source}: no words")
    return words
