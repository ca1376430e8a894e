"""Write BENCHMARKS.md (and the README's results block) from the JSON files in bench/results/. Never edit the
figures there by hand:

    python -m bench.report

One module per section of BENCHMARKS.md; their prose is templates (template.py) whose figures come from the
JSON, and whose definitions (targets, split sizes, issue numbers) come from definitions.py."""

from bench.report.document import main, render
from bench.report.readme import results_block

__all__ = ["main", "render", "results_block"]
