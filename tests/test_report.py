"""BENCHMARKS.md is exactly what `python -m bench.report` makes from the committed JSON, and no figure in it is
typed by hand: the report's templates hold no digit outside their placeholders (definitions such as targets and
split sizes come from the named constants of bench/report/definitions.py)."""

import ast
import re
from pathlib import Path

import bench.report
from bench.report import render, results_block
from bench.report.noise import SEED_RUNS, noise_section
from bench.report.readme import BEGIN, END, current_block, with_block
from bench.report.template import TEMPLATES, bare

ROOT = Path(__file__).parent.parent
PACKAGE = Path(bench.report.__file__).parent
# The modules of the package that hold no text of the report: its numbers, each under a name, and the template rule.
EXEMPT = ("definitions.py", "template.py")
# A string in the code that is a key, a file name or a glob rather than text of the report: it may hold digits.
NAME = re.compile(r"[A-Za-z_][\w.*/-]*")


def test_benchmarks_md_is_regenerated_byte_for_byte_from_the_results() -> None:
    committed = (ROOT / "BENCHMARKS.md").read_text()
    assert render() == committed, "BENCHMARKS.md differs from the JSON: run `python -m bench.report`"


def test_no_template_holds_a_digit_outside_its_placeholders() -> None:
    assert len(TEMPLATES) > 100  # every section's templates were imported
    typed = {text: re.findall(r"\S*[0-9]\S*", prose.bare()) for text, prose in TEMPLATES.items()}
    typed = {text[:80]: words for text, words in typed.items() if words}
    assert not typed, f"digits typed into the report's prose (use a placeholder or a named constant): {typed}"


def literals(tree: ast.AST) -> list[tuple[int, str]]:
    """Every piece of string literal in `tree` that the report could print: docstrings and the format specs of
    f-strings (`{x:.2f}`) left out, the literal parts of f-strings in."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef) and ast.get_docstring(node, clean=False):
            skipped.add(id(node.body[0].value))  # type: ignore[attr-defined]
        if isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            skipped.update(id(n) for n in ast.walk(node.format_spec))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped
    ]


def test_no_text_in_the_report_code_bypasses_the_templates_with_a_digit() -> None:
    """The same rule over every string in the package's code (f-strings included) outside the exempt modules: a
    string with a digit is a key, a file name or a glob (no spaces), never text typed for the reader."""
    found = []
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name in EXEMPT:
            continue
        for line, text in literals(ast.parse(path.read_text())):
            if re.search(r"[0-9]", bare(text)) and not NAME.fullmatch(text):
                found.append(f"{path.name}:{line}: {text[:60]!r}")
    assert not found, "digits typed into the report's code: " + "; ".join(found)


def test_the_digit_check_catches_a_typed_figure() -> None:
    assert re.search(r"[0-9]", bare("trained at about 165 images/s ({speed} now)"))
    assert not re.search(r"[0-9]", bare("{images:,} images in {minutes:.1f} min, bf16 and fp32"))


def test_readme_results_block_is_regenerated_from_the_results() -> None:
    readme = (ROOT / "README.md").read_text()
    block = current_block(readme)
    if block is None:  # a README without the markers has no generated block
        return
    assert block == results_block(), "README.md's results block differs from the JSON: run `python -m bench.report`"


def test_the_readme_block_is_spliced_between_the_markers_only() -> None:
    readme = f"# Title\n\nbefore\n{BEGIN}\nstale 1.00 %\n{END}\nafter\n"
    updated = with_block(readme, "fresh\n")
    assert updated == f"# Title\n\nbefore\n{BEGIN}\nfresh\n{END}\nafter\n"
    assert current_block(updated) == "fresh\n"
    assert current_block("# no markers\n") is None


def test_the_noise_section_shows_the_spread_once_both_seeds_are_recorded() -> None:
    first = {"seed": 0, "val_exact_match": 0.9591, "val_exact_match_beam3": 0.9644, "test_exact_match": 0.9623,
             "answer_search": "beam 3", "minutes_to_95": 45.6, "command": "c", "git_commit": "a" * 40}  # fmt: skip
    second = {**first, "seed": 1, "val_exact_match": 0.9633, "test_exact_match": 0.9601, "minutes_to_95": None}
    one = "\n".join(noise_section({SEED_RUNS[0]: first}))
    assert "is pending" in one and "| spread (max - min) |" not in one
    both = "\n".join(noise_section({SEED_RUNS[0]: first, SEED_RUNS[1]: second}))
    assert "pending" not in both
    assert "| spread (max - min) | | 0.42 points | 0.00 points | 0.22 points | — | |" in both
