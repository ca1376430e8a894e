"""BENCHMARKS.md is exactly what bench/report.py makes from the committed JSON: no figure typed by hand."""

from pathlib import Path

from bench.report import render


def test_benchmarks_md_is_regenerated_byte_for_byte_from_the_results() -> None:
    committed = (Path(__file__).parent.parent / "BENCHMARKS.md").read_text()
    assert render() == committed, "BENCHMARKS.md differs from the JSON: run `python bench/report.py`"
