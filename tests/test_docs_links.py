"""The documentation a user reads holds together: every relative link and image in README.md and docs/*.md names a
file of the repository (and a `#anchor` into a Markdown file, one of its headings), and the README starts where a
user starts: the two commands first, then what they need and the results, all within its first screen.

Links inside code (fenced blocks, `inline code`) are not links; web addresses are not checked (no network here).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# The target: the two commands, the requirements and the results table on the README's first screen.
FIRST_SCREEN_LINES = 60
RESULTS_BEGIN, RESULTS_END = "<!-- results:begin -->", "<!-- results:end -->"

INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^\"']*[\"'])?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?")
HTML_LINK = re.compile(r"<(?:img|a|source)\b[^>]*?\b(?:src|href|srcset)=[\"']([^\"']+)[\"']", re.IGNORECASE)
HTML_ANCHOR = re.compile(r"\b(?:id|name)=[\"']([^\"']+)[\"']")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")


def prose_lines(text: str) -> list[str]:
    """The document's lines outside fenced code blocks."""
    lines, fence = [], None
    for line in text.splitlines():
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)[0]
        elif fence is not None:
            if opening and opening.group(1)[0] == fence:
                fence = None
        else:
            lines.append(line)
    return lines


def link_targets(text: str) -> list[str]:
    """Every link and image target of a Markdown document, web addresses included."""
    targets = []
    for raw in prose_lines(text):
        line = INLINE_CODE.sub("", raw)  # `[x](y)` in code is an example, not a link
        targets += INLINE_LINK.findall(line) + HTML_LINK.findall(line)
        targets += REFERENCE_LINK.findall(line)
    return targets


def heading_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped (word characters, spaces and hyphens
    kept), each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors a document defines: its headings' slugs (a repeated slug numbered -1, -2 ... as GitHub does)
    and explicit HTML ids and names."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose_lines(text):
        if heading := HEADING.match(line):
            slug = heading_slug(heading.group(2))
            found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
        found.update(HTML_ANCHOR.findall(line))
    return found


def broken_links(document: Path, root: Path = ROOT) -> list[str]:
    """Each relative link of `document` that names no file inside `root`, or no heading of the Markdown file it
    points into, as 'document: target (what is wrong)'."""
    problems = []
    for target in link_targets(document.read_text()):
        if SCHEME.match(target):
            continue
        path_part, _, anchor = unquote(target).partition("#")
        if path_part.startswith("/"):
            path = (root / path_part.lstrip("/")).resolve()
        else:
            path = (document.parent / path_part).resolve() if path_part else document.resolve()
        where = f"{document.relative_to(root)}: {target}"
        if not path.is_relative_to(root.resolve()):
            problems.append(f"{where} (outside the repository)")
        elif not path.exists():
            problems.append(f"{where} (no such file)")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path.read_text()):
            problems.append(f"{where} (no heading or id '{anchor}' in {path.name})")
    return problems


def test_the_documents_and_their_links_are_found() -> None:
    """A guard on the reader itself: no documents, or no links read from them, would pass every check below."""
    assert {"README.md", "architecture.md", "scaling.md"} <= {document.name for document in DOCUMENTS}
    assert len(link_targets((ROOT / "README.md").read_text())) >= 10


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_and_image_names_an_existing_file(document: Path) -> None:
    problems = broken_links(document)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_the_checker_finds_broken_links_missing_images_and_anchors(tmp_path: Path) -> None:
    """The rules above on a made-up repository with one of each mistake, so that they are known to bite."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text(
        "# Guide\n\n## Two words: more\n\n## Two words: more\n\n## Run `make run`\n"
    )
    (tmp_path / "docs" / "picture.png").write_bytes(b"\x89PNG")
    document = tmp_path / "README.md"
    document.write_text(
        "# Title\n\n"
        "[guide](docs/guide.md) [section](docs/guide.md#two-words-more) [again](docs/guide.md#two-words-more-1)\n"
        "[code in a heading](docs/guide.md#run-make-run)\n"
        '![picture](docs/picture.png) [web](https://example.com/x.md) [here](#title) <img src="docs/picture.png">\n'
        "![missing picture](docs/missing.png) [gone](docs/gone.md) [bad anchor](docs/guide.md#nowhere)\n"
        "[away](../elsewhere/README.md) [no anchor here](#nothing) <img src='docs/absent.png'>\n"
        "`[in code](docs/not-a-link.md)`\n\n"
        "```\n[in a fence](docs/not-a-link-either.md)\n```\n\n"
        "[ref]: docs/unreferenced.md\n"
    )
    assert broken_links(document, tmp_path) == [
        "README.md: docs/missing.png (no such file)",
        "README.md: docs/gone.md (no such file)",
        "README.md: docs/guide.md#nowhere (no heading or id 'nowhere' in guide.md)",
        "README.md: ../elsewhere/README.md (outside the repository)",
        "README.md: #nothing (no heading or id 'nothing' in README.md)",
        "README.md: docs/absent.png (no such file)",
        "README.md: docs/unreferenced.md (no such file)",
    ]


def test_heading_slugs_follow_github() -> None:
    assert heading_slug("The real `words_captcha` layout") == "the-real-words_captcha-layout"
    assert heading_slug("What breaks at 100x the data") == "what-breaks-at-100x-the-data"
    assert heading_slug("The main job: `make run`") == "the-main-job-make-run"


def test_the_readme_starts_with_the_two_commands_the_makefile_and_ci_run() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines[0].startswith("# ")
    body = [line for line in lines[1:] if line.strip()]
    assert body[0].startswith("```")
    assert body[1].split("#")[0].split() == ["make", "run"]
    assert body[2].split("#")[0].split() == ["make", "test"]
    assert body[3].startswith("```")
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.MULTILINE) and re.search(r"^test:", makefile, re.MULTILINE)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_first_screen_holds_the_requirements_and_the_results() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines.count(RESULTS_BEGIN) == 1 and lines.count(RESULTS_END) == 1
    begin, end = lines.index(RESULTS_BEGIN), lines.index(RESULTS_END)
    needs = next(i for i, line in enumerate(lines) if line.startswith("## What it needs"))
    assert needs < begin < end < FIRST_SCREEN_LINES, (
        f"'## What it needs' at line {needs + 1}, results at lines {begin + 1}-{end + 1}: "
        f"all must be within the first {FIRST_SCREEN_LINES} lines"
    )
