"""python -m bench.report: write BENCHMARKS.md and the README's results block."""

from bench.report.document import main

main()
