"""The README's results block: the headline figures of the default run, written from the same JSON.

README.md holds it between the markers below; `python -m bench.report` rewrites the text between them (and
leaves a README without them alone), and tests/test_report.py checks that it is current."""

from __future__ import annotations

from bench.report import definitions as d
from bench.report.formats import fixed, num, pct, short
from bench.report.results import load
from bench.report.template import Prose

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
RUN = "sat_60_epyc"  # the default `make run` recipe on the AMD EPYC: captcha_full_<RUN>, captcha_answers_<RUN>

INTRO = Prose(
    "The default `make run` (the `sat` model, a {budget}-minute budget) on {cores} CPU cores, {cpu} (`{run}`):"
)
TABLE = Prose("| | |\n|---|---|")
ROW = Prose("| {figure} | {value} |")
TEST = Prose("test split: the answer file scored against `test_labels.txt` ({images} images)")
CHOSEN = Prose("validation: the answer file's search ({search})")
GREEDY = Prose("validation: open vocabulary (greedy)")
BEAM = Prose("validation: open vocabulary (beam {beam})")
MINUTES = Prose("minutes to {level} (on the {subset}-image validation sample read during training)")
TRAINING = Prose("training images/s")
READING = Prose("reading images/s (from the cache, greedy, {precision}, batch {batch})")
RSS = Prose("peak RSS")
CAPTIONING = Prose(
    "Captioning (`sat` decoder, the synthetic scenes' test split): BLEU-4 {bleu4} (greedy), CIDEr {cider}; for {share} "
    "of\nthe color and shape words it writes, its most-attended cell lies on an object of that color or shape "
    "(chance {chance})."
)
EARLY = 0.90  # the minutes_to_<percent> figure shown


def results_block() -> str:
    """The block's text, from its first line to the newline before the end marker."""
    run, answers = load(f"captcha_full_{RUN}.json"), load(f"captcha_answers_{RUN}.json")
    if not run:
        return ""
    rows = [
        (GREEDY(), pct(run["val_exact_match"])),
        (BEAM(beam=d.REPORTED_BEAM), pct(run.get("val_exact_match_beam3"))),
        (
            MINUTES(level=f"{100 * EARLY:g} %", subset=f"{d.VAL_SUBSET:,}"),
            num(run.get(f"minutes_to_{round(100 * EARLY)}")),
        ),
        (TRAINING(), num(run["train_images_per_s"])),
        (READING(precision=run["read_precision"], batch=run["read_batch"]), num(run["infer_images_per_s"])),
        (RSS(), num(run["peak_rss_gb"], " GB")),
    ]
    if answers:
        rows[:0] = [
            (TEST(images=f"{answers['test_images']:,}"), pct(answers["test_exact_match"])),
            (CHOSEN(search=answers["answer_search"]), pct(answers["val_exact_match"])),
        ]
    else:
        rows[:0] = [(TEST(images=f"{d.TEST_IMAGES:,}"), pct(run["test_exact_match"]))]
    lines = [
        INTRO(budget=short(run["budget_minutes"]), cores=run["nproc"], cpu=run["cpu"], run=RUN),
        "",
        TABLE(),
        *(ROW(figure=figure, value=value) for figure, value in rows),
    ]
    scenes = (load("scenes.json") or {}).get("sat")
    if scenes and scenes.get("grounding") is not None:
        lines += [
            "",
            CAPTIONING(
                bleu4=fixed(scenes["bleu4"], 3),
                cider=fixed(scenes["cider"], 3),
                share=pct(scenes["grounding"]),
                chance=pct(scenes["grounding_chance"]),
            ),
        ]
    return "\n".join(lines) + "\n"


def current_block(readme: str) -> str | None:
    """The text between the markers (after the begin marker's line), or None where the README has none."""
    if BEGIN not in readme or END not in readme:
        return None
    return readme.split(BEGIN, 1)[1].split(END, 1)[0].removeprefix("\n")


def with_block(readme: str, block: str) -> str:
    """`readme` with the text between its markers replaced by `block`."""
    head, rest = readme.split(BEGIN, 1)
    return f"{head}{BEGIN}\n{block}{END}{rest.split(END, 1)[1]}"
