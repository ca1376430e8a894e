"""The assignment's answer file for finished runs (bench/captcha_answers.py): the search validation chose."""

from __future__ import annotations

from bench.report.definitions import FINAL_TEST_MUST, ISSUE_FINAL
from bench.report.formats import level, met, pct
from bench.report.provenance import made_by
from bench.report.template import Prose

HEADING = Prose("## The assignment's answer file (`bench/captcha_answers.py` → `results/captcha_answers_<run>.json`)")
INTRO = Prose(
    "`imcaption captcha assignment` on a finished run: validation read with each answer search, the best on "
    "validation writes the test answers, scored against `test_labels.txt` (the test split read once)."
)
HEADER = Prose(
    "| run | validation by search | answers written with | validation, that search | validation, open vocabulary "
    "| test, answer file | issue {issue}: ≥ {level} test answers | made by |\n|---|---|---|---|---|---|---|---|"
)
ROW = Prose("| `{name}` | {searches} | {search} | {val} | {open} | {test} | {met} | {made_by} |")
SEARCH = Prose("{search}: {share}")


def answers_section(results: dict[str, dict]) -> list[str]:
    if not results:
        return []
    rows = [HEADING(), "", INTRO(), "", HEADER(issue=ISSUE_FINAL, level=level(FINAL_TEST_MUST))]
    for name, r in sorted(results.items()):
        searches = "; ".join(SEARCH(search=s, share=pct(v)) for s, v in r["val_exact_match_by_search"].items())
        rows.append(
            ROW(
                name=name,
                searches=searches,
                search=r["answer_search"],
                val=pct(r["val_exact_match"]),
                open=pct(r["val_exact_match_open"]),
                test=pct(r["test_exact_match"]),
                met=met((r["test_exact_match"] or 0) >= FINAL_TEST_MUST),
                made_by=made_by(r, with_cpu=True),
            )
        )
    return [*rows, ""]
