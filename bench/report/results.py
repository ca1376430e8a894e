"""Reading the results: the JSON files under bench/results/, by file name or by the prefix a benchmark writes."""

from __future__ import annotations

import json
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
RESULTS = BENCH / "results"
REPOSITORY = BENCH.parent


def load(name: str) -> dict | None:
    """One result file, or None where it has not been written yet."""
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def load_all(prefix: str) -> dict[str, dict]:
    """Every `<prefix><name>.json`, by name, in file-name order."""
    return {path.stem[len(prefix) :]: json.loads(path.read_text()) for path in sorted(RESULTS.glob(f"{prefix}*.json"))}


def every_result() -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(RESULTS.glob("*.json"))]
