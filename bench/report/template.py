"""The report's prose as templates: every figure in BENCHMARKS.md enters through a named placeholder.

A `Prose` is a piece of text with `{name}` (str.format) placeholders. Each registers itself in `TEMPLATES`, so
that tests/test_report.py can check that no template holds a digit outside its placeholders: figures come from
the results' JSON, definitions (a target, a split size, an issue number) from the named constants of
definitions.py. Make templates at module level: one made inside a function is registered once per text."""

from __future__ import annotations

import re
from string import Formatter

PLACEHOLDER = re.compile(r"\{[^{}]*\}")
# Names that contain a digit but are no number: number formats, metrics, a network, HTTP status classes.
NAMES = re.compile(r"\b(?:fp32|bf16|bfloat16|int8|uint8|BLEU-[14]|MobileNetV2|[45]xx)\b")
TEMPLATES: dict[str, Prose] = {}


def bare(text: str) -> str:
    """`text` without its placeholders and names: what a reader sees that no result or constant filled in."""
    return NAMES.sub("", PLACEHOLDER.sub("", text))


class Prose:
    def __init__(self, text: str) -> None:
        self.text = text
        self.names = {re.split(r"[.\[!:]", field)[0] for _, field, _, _ in Formatter().parse(text) if field}
        TEMPLATES.setdefault(text, self)

    def __call__(self, **values: object) -> str:
        unused = set(values) - self.names
        if unused:
            raise TypeError(f"values for no placeholder: {', '.join(sorted(unused))}")
        return self.text.format(**values)

    def bare(self) -> str:
        return bare(self.text)
