"""Recognizers: the full protocol for each run of bench/captcha_full.py, its targets, confusions and curves."""

from __future__ import annotations

from bench.report import definitions as d
from bench.report.formats import checks, level, num, pct, points, short
from bench.report.provenance import made_by
from bench.report.targets import budget_targets, final_targets, first_targets
from bench.report.template import Prose

MISSING = Prose("## Recognizers\n\nNot measured yet: run `python -m bench.captcha_full --model sat`.\n")
HEADING = Prose("## Recognizers (`bench/captcha_full.py` → `results/captcha_full_<model>.json`)")
PROTOCOL = Prose(
    "Full protocol: the {images} generated images (seed {seed}), default configuration, best checkpoint by "
    "validation exact match, evaluated on the {val} validation images; the test split predicted into an answer file "
    "by `imcaption captcha predict` with the model's default search (beam {beam} for sat and par since that became "
    "the default; greedy in results that name no search) and scored against the generator's `test_labels.txt`. "
    "Every reading in the reading commands' default number format, shown in the inference row: `auto` since it "
    "became the default, bf16 for the encoder on this CPU (fp32 before, and in results that name none)."
)
COLUMNS = Prose(
    "Columns: `{sat}` is the default configuration, trained by the shared engine of imcaption {engine}; `{before}` "
    "the same configuration trained by imcaption {first}'s own captcha trainer (the figure before the engine "
    "refactor, kept for the rerun section below; its command and commit were not recorded). Conditions: `{before}` "
    "ran with editing, short speed probes and a low-priority single-thread test run beside it; `{sat}` trained at "
    "commit {trained} with test-suite runs sharing the cores for much of its training, so its wall minutes, minutes "
    "to {level} and training images/s are not comparable with `{before}`'s; its evaluation was rerun later at the "
    "commit shown (the parameter count changed, no weight), on the machine in the CPU row, which is not the one it "
    "trained on: inference images/s is the evaluation machine's. Its peak RSS is the largest of its runs: an "
    "evaluation that also rebuilt the image cache, dominated by the memory-mapped cache being written, not "
    "training's (`{before}`: {before_rss:.1f} GB). Shared cores raise wall minutes and lower images/s; the accuracy "
    "of a fixed number of epochs does not depend on them. Earlier configurations measured by {first} without a "
    "reproducible command (color-only and affine augmentation, a CTC recognizer) were withdrawn; the CTC peer, "
    "`crnn`, is measured in the recipe probes."
)
BUDGETED = Prose(
    "A budgeted run (`schedule`: a {budget}-minute budget; issue {issue}) validates on {subset} validation images as "
    "it trains (a seeded random sample in runs that record their seed, the first {subset} before), so its curve and "
    "its minutes to X % are on that subset; its last point and every other row are on the whole split. The `by "
    "search` rows read the whole validation split with each beam width, open and held to the words of the training "
    "labels; the test split is read once, with the default search."
)
TARGETS = Prose("Targets (issue {issue}), judged from the figures above:")
BUDGET_TARGETS = Prose(
    "Targets of issue {issue} (a {budget}-minute budget on the {cores} cores), judged from the figures above:"
)
RUN_TARGETS = Prose("- `{name}`: {checks}")
CONFUSIONS = Prose("Most frequent character confusions of `{name}` on validation (true→read): {pairs}.")
PAIR = Prose("{true}→{read} ({count})")
CURVE = Prose("Validation accuracy against wall minutes, `{name}`:\n\n![{name}](bench/results/curve_{name}.png)\n")
CURVE_ROWS = Prose("| minutes | {minutes} |\n{rule}\n| exact match | {shares} |")
FIRST_RUN, BEFORE_ENGINE = "sat", "sat_v0.1"  # the columns the Columns paragraph describes


BUDGET_SCHEDULE = Prose("{minutes}-minute budget")
EPOCH_SCHEDULE = Prose("{epochs} epochs")
AUTO = Prose("auto ({resolved} on this CPU)")
SUBSET_GAP = Prose("{subset} vs {whole} ({gap} points)")
HOW_READ = Prose("{precision}, batch {batch}")
PASSES = Prose("; median of passes {passes}")
SPEED = Prose("{speed} ({how})")
SEED_NOT_RECORDED = Prose("not recorded ({seed}, the default)")
TEST_SEARCH = Prose("{share} ({search})")
OPTIONS = Prose("{model}, `{options}`")


def schedule(r: dict) -> str:
    if r.get("budget_minutes"):
        return BUDGET_SCHEDULE(minutes=short(r["budget_minutes"]))
    return EPOCH_SCHEDULE(epochs=r["epochs"])


def training_precision(r: dict) -> str:
    """fp32 before --precision existed; "auto" spelled out with what this CPU resolved it to."""
    precision = r.get("precision", "fp32")
    if precision == "auto":
        return AUTO(resolved="bf16" if r.get("cpu_native_bf16") else "fp32")
    return precision


def subset_gap(r: dict) -> str:
    subset = r.get("val_subset_exact_match")
    if subset is None:
        return "not recorded"
    return SUBSET_GAP(subset=pct(subset), whole=pct(r["val_exact_match"]), gap=points(subset - r["val_exact_match"]))


def by_search(r: dict, vocabulary: str) -> str:
    table = r.get("val_exact_match_by_search") or {}
    cells = [table.get(f"beam{beam}_{vocabulary}") for beam in d.SEARCH_TABLE_BEAMS]
    return "not measured" if not any(cells) else " / ".join(pct(cell) for cell in cells)


def parameters(r: dict) -> str:
    """Counted one way (imcaption.models.trained_parameters); earlier results counted after BatchNorm folding."""
    if r.get("parameters_counted") == "trained, before BatchNorm folding":
        return num(r["parameters"])
    return "— (counted after folding)"


def inference_speed(r: dict) -> str:
    """Greedy reading of validation; results from before the reader chose its number format read fp32."""
    how = HOW_READ(precision=r.get("read_precision", "fp32"), batch=r.get("read_batch", d.OLD_READ_BATCH))
    if "infer_passes_images_per_s" in r:
        how += PASSES(passes=", ".join(num(p) for p in r["infer_passes_images_per_s"]))
    return SPEED(speed=num(r["infer_images_per_s"]), how=how)


def seed(r: dict) -> str:
    return str(r["seed"]) if "seed" in r else SEED_NOT_RECORDED(seed=d.DEFAULT_SEED)


def minutes_to(r: dict, *shares: float) -> str:
    return " / ".join(num(r.get(f"minutes_to_{round(100 * share)}")) for share in shares)


def levels(*shares: float) -> str:
    return " / ".join(level(share) for share in shares)


LEVELS = (0.90, 0.95, 0.98, 0.99)  # the minutes_to_<percent> fields shown
BEAMS = " / ".join(map(str, d.SEARCH_TABLE_BEAMS))
MINUTES_TO = Prose("minutes to {levels}")
BY_SEARCH = Prose("validation by search: beam {beams}, {vocabulary}")
FIELD_ROWS = [
    (Prose("validation exact match ({val}, greedy)")(val=f"{d.VAL_IMAGES:,}"), lambda r: pct(r["val_exact_match"])),
    (Prose("validation exact match, beam {beam}")(beam=d.REPORTED_BEAM), lambda r: pct(r.get("val_exact_match_beam3"))),
    (Prose("validation exact match, lexicon of training words")(), lambda r: pct(r.get("val_exact_match_lexicon"))),
    (
        Prose("test exact match (answer file vs test_labels.txt; its search)")(),
        lambda r: TEST_SEARCH(share=pct(r["test_exact_match"]), search=r.get("answer_search", "greedy")),
    ),
    (Prose("test exact match, greedy")(), lambda r: pct(r.get("test_exact_match_greedy"))),
    (Prose("validation CER")(), lambda r: pct(r["val_cer"])),
    (Prose("schedule")(), schedule),
    (
        Prose("model, extra training options")(),
        lambda r: OPTIONS(model=r["model"], options=r["options"]) if r.get("options") else r["model"],
    ),
    (Prose("augmentation, label smoothing")(), lambda r: f"{r.get('augment', 'full')}, {r.get('label_smoothing', 0)}"),
    (Prose("training precision")(), training_precision),
    (Prose("training wall minutes")(), lambda r: num(r["train_minutes"])),
    (MINUTES_TO(levels=levels(LEVELS[0])), lambda r: minutes_to(r, LEVELS[0])),
    (MINUTES_TO(levels=levels(*LEVELS[1:3])), lambda r: minutes_to(r, *LEVELS[1:3])),
    (MINUTES_TO(levels=levels(LEVELS[3])), lambda r: minutes_to(r, LEVELS[3])),
    (Prose("seed")(), seed),
    (Prose("last subset reading ({subset}) vs the whole split")(subset=f"{d.VAL_SUBSET:,}"), subset_gap),
    (BY_SEARCH(beams=BEAMS, vocabulary="open vocabulary"), lambda r: by_search(r, "open")),
    (BY_SEARCH(beams=BEAMS, vocabulary="training-label lexicon"), lambda r: by_search(r, "lexicon")),
    (Prose("training images/s")(), lambda r: num(r["train_images_per_s"])),
    (Prose("inference images/s (from the cache, greedy; how it read)")(), inference_speed),
    (Prose("peak RSS")(), lambda r: num(r["peak_rss_gb"], " GB")),
    (Prose("trained parameters (before BatchNorm folding)")(), parameters),
    (Prose("input")(), lambda r: r["input_size"]),
    (Prose("CPU (of the run that wrote the JSON)")(), lambda r: r.get("cpu", "?")),
    (Prose("made by (command, commit)")(), made_by),
]


def comparison_table(results: dict[str, dict], names: list[str], field_rows: list) -> list[str]:
    """A markdown table: one column per name, one row per (label, getter)."""
    rows = ["| | " + " | ".join(f"`{n}`" for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    rows += [f"| {label} | " + " | ".join(get(results[n]) for n in names) + " |" for label, get in field_rows]
    return [*rows, ""]


def target_lines(runs: dict[str, dict]) -> list[str]:
    names = list(runs)
    rows = [TARGETS(issue=d.ISSUE_FIRST), ""]
    rows += [RUN_TARGETS(name=n, checks=checks(first_targets(runs[n]))) for n in names]
    budgeted = [n for n in names if runs[n].get("budget_minutes") == d.BUDGET_MINUTES]
    seeded = [n for n in budgeted if "seed" in runs[n]]
    for issue, chosen, judge in ((d.ISSUE_BUDGET, budgeted, budget_targets), (d.ISSUE_FINAL, seeded, final_targets)):
        if chosen:
            cores = runs[chosen[0]]["nproc"]
            rows += ["", BUDGET_TARGETS(issue=issue, budget=d.BUDGET_MINUTES, cores=cores), ""]
            rows += [RUN_TARGETS(name=n, checks=checks(judge(runs[n]))) for n in chosen]
    return [*rows, ""]


def curve_lines(name: str, curve: list[dict]) -> list[str]:
    table = CURVE_ROWS(
        minutes=" | ".join(f"{p['wall_minutes']:.1f}" for p in curve),
        rule="|---" * (len(curve) + 1) + "|",
        shares=" | ".join(f"{100 * p['val_exact_match']:.1f}" for p in curve),
    )
    return [CURVE(name=name), table, ""]


def model_section(runs: dict[str, dict]) -> list[str]:
    if not runs:
        return [MISSING()]
    rows = [
        HEADING(),
        "",
        PROTOCOL(images=f"{d.DATASET_IMAGES:,}", seed=d.DATA_SEED, val=f"{d.VAL_IMAGES:,}", beam=d.ANSWER_SEARCH_BEAM),
        "",
    ]
    if FIRST_RUN in runs and BEFORE_ENGINE in runs:
        rows += [
            COLUMNS(
                sat=FIRST_RUN,
                before=BEFORE_ENGINE,
                engine=d.ENGINE_VERSION,
                first=d.FIRST_VERSION,
                trained=d.SAT_TRAINED_AT,
                level=levels(LEVELS[0]),
                before_rss=runs[BEFORE_ENGINE]["peak_rss_gb"],
            ),
            "",
        ]
    rows += [BUDGETED(budget=d.BUDGET_MINUTES, issue=d.ISSUE_BUDGET, subset=f"{d.VAL_SUBSET:,}"), ""]
    rows += [*comparison_table(runs, list(runs), FIELD_ROWS), *target_lines(runs)]
    for name, r in runs.items():
        pairs = [
            PAIR(true=c["true"] or "∅", read=c["read"] or "∅", count=c["count"]) for c in r.get("top_confusions", [])
        ]
        if pairs:
            rows += [CONFUSIONS(name=name, pairs=", ".join(pairs)), ""]
    for name, r in runs.items():
        rows += curve_lines(name, r["curve"])
    return rows
