"""`sat` and the CRNN peer on captchas drawn by third-party libraries (bench/captcha_families.py)."""

from __future__ import annotations

from bench.report.definitions import AMBIGUOUS_PAIR, CUSTOM_SPLIT
from bench.report.formats import pct, short
from bench.report.provenance import commit, made_by
from bench.report.template import Prose

HEADING = Prose("## Other captcha families (`bench/captcha_families.py` → `results/captcha_families.json`)")
INTRO = Prose(
    "Captchas drawn by two PyPI libraries (`pip install -e .[train,families]`) in the file-name layout "
    "(`LABEL_INDEX.png`), split {train}/{val}/{test} by `imcaption captcha train`'s fixed draw, which also takes the "
    "charset and lengths from the training labels and the input size from the images. Each model trains for the "
    "same wall-clock budget; the best checkpoint by validation exact match reads the validation and the test split "
    "with its default search (`captcha evaluate` without options). Images: train / validation / test."
)
HEADER = Prose(
    "| family | charset size | lengths | images | minutes | model | validation exact match | test exact match "
    "| test CER | test misreads that are {pair} only | commit |\n|---|---|---|---|---|---|---|---|---|---|---|"
)
ROW = Prose(
    "| `{family}` | {charset} | {lengths} | {train} / {val} / {test} | {minutes} | {model} | {val_match} | "
    "{test_match} | {test_cer} | {ambiguous} | {commit} |"
)
LENGTHS = Prose("{shortest}-{longest}")
CONFUSION = Prose("{true}->{read} ×{count}")
NOTE = Prose(
    "- `{name}`: `{library}`, images {width} px wide and {height} high, read at {input} (height x width); {steps} "
    "steps in {minutes} minutes; seed {seed}. Most frequent test confusions (true->read): {confusions}. "
    "Made by: {made_by}."
)


def percent(share: float) -> str:
    return short(round(100 * share))


def families_section(families: dict | None) -> list[str]:
    if not families:
        return []
    val, test = CUSTOM_SPLIT.val_fraction, CUSTOM_SPLIT.test_fraction
    rows = [
        HEADING(),
        "",
        INTRO(train=percent(1 - val - test), val=percent(val), test=percent(test)),
        "",
        HEADER(pair="↔".join(AMBIGUOUS_PAIR)),
    ]
    notes = []
    in_order = sorted(families.items(), key=lambda item: (item[1]["family"], item[1]["model"] != "sat", item[0]))
    for name, r in in_order:  # by family, our default model first
        images, (shortest, longest) = r["images"], r["label_lengths"]
        lengths = f"{shortest}" if shortest == longest else LENGTHS(shortest=shortest, longest=longest)
        rows.append(
            ROW(
                family=r["family"],
                charset=r["charset_size"],
                lengths=lengths,
                train=f"{images['train']:,}",
                val=f"{images['val']:,}",
                test=f"{images['test']:,}",
                minutes=short(r["budget_minutes"]),
                model=r["model"],
                val_match=pct(r["val_exact_match"]),
                test_match=pct(r["test_exact_match"]),
                test_cer=pct(r["test_cer"]),
                ambiguous=pct(r.get("test_misreads_only_0_O")),
                commit=commit(r),
            )
        )
        confusions = ", ".join(
            CONFUSION(true=c["true"] or "∅", read=c["read"] or "∅", count=c["count"])
            for c in r.get("test_top_confusions", ())
        )
        notes.append(
            NOTE(
                name=name,
                library=r["library"],
                width=r["image_width"],
                height=r["image_height"],
                input=r["input_size"],
                steps=f"{r['steps']:,}",
                minutes=short(r["train_minutes"]),
                seed=r["seed"],
                confusions=confusions or "not recorded",
                made_by=made_by(r, with_cpu=True),
            )
        )
    return [*rows, "", *notes, ""]
