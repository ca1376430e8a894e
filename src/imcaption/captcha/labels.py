"""Label and answer files in the real format: one `<id> <word>` line per image, id order.

Parsed with a plain split, never a CSV reader: `nan`, `null`, `true` and `none` are words here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from imcaption.captcha.vocabulary import CAPTCHA_WORD
from imcaption.files import write_text_atomically

IMAGE_ID = re.compile(r"^a(0|[1-9][0-9]*)$")


class LabelFileError(ValueError):
    """A label file line that cannot be used; the message names file and line."""


@dataclass(frozen=True)
class LabelRow:
    index: int
    word: str

    @property
    def image_id(self) -> str:
        return f"a{self.index}"


def parse_image_id(text: str) -> int:
    match = IMAGE_ID.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an image id like a123")
    return int(match.group(1))


def read_labels(path: str | Path, check_words: bool = True) -> list[LabelRow]:
    """Rows sorted by numeric id. Rejects malformed lines, duplicate ids and (if check_words) words
    that are not 3-5 letters a-z, naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file not found: {path}")
    rows: dict[int, LabelRow] = {}
    first_line: dict[int, int] = {}
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            text = line.rstrip("\n").rstrip("\r")
            if not text.strip():
                continue
            parts = text.split(" ")
            where = f"{path}:{line_no}"
            if len(parts) != 2:
                raise LabelFileError(f"{where}: expected '<id> <word>' separated by one space, got {text!r}")
            try:
                index = parse_image_id(parts[0])
            except ValueError as err:
                raise LabelFileError(f"{where}: {err}") from None
            word = parts[1]
            if check_words and not CAPTCHA_WORD.match(word):
                raise LabelFileError(f"{where}: label {word!r} must be 3-5 lowercase letters a-z")
            if index in rows:
                raise LabelFileError(f"{where}: duplicate id a{index} (first on line {first_line[index]})")
            rows[index] = LabelRow(index, word)
            first_line[index] = line_no
    return [rows[i] for i in sorted(rows)]


def write_labels(path: str | Path, rows: Iterable[LabelRow]) -> None:
    """Write atomically, in id order."""
    ordered = sorted(rows, key=lambda row: row.index)
    write_text_atomically(path, "".join(f"{row.image_id} {row.word}\n" for row in ordered))
