"""Captioning: the decoders on the synthetic scenes set (bench/scenes.py)."""

from __future__ import annotations

from bench.report import definitions as d
from bench.report.formats import checks, fixed, level, num, pct, short
from bench.report.provenance import made_by
from bench.report.recognizers import comparison_table
from bench.report.template import Prose

MISSING = Prose("## Captioning\n\nNot measured yet: run `python -m bench.scenes`.\n")
HEADING = Prose("## Captioning (`bench/scenes.py` → `results/scenes.json`)")
INTRO = Prose(
    "The synthetic COCO-format scenes set (seed {seed}): {images} images for training and validation (the last "
    "{val_share}, which picks the checkpoint by BLEU-4) and {test} more for the test split, which no choice looks at; "
    "all figures but the validation row are on the test split. Default configuration per decoder, scored with "
    "pycocoevalcap. Grounding: for each generated color or shape word, whether the grid cell with the most "
    "attention overlaps an object of that color or shape (boxes and cells both as fractions of the image); chance is "
    "the share of cells that do. Columns: the default configuration (from-scratch cnn encoder) per decoder; `sat, "
    "mobilenet` the frozen MobileNetV2 option (`results/scenes_mobilenet.json`)."
)
GROUNDING = Prose("{share} of {words} words (chance {chance})")
NO_ATTENTION = Prose("— (no attention)")()
SCORED_ON = Prose("{split} split, {images} images")
TWO = Prose("{first} / {second}")
ENCODER = Prose("{encoder}, {size} px, {epochs}")
TARGETS = Prose("Targets (issue {issue}) for `sat`: {checks}")
BLEU_TARGET = Prose("BLEU-4 ≥ {bleu}")
GROUNDING_TARGET = Prose("grounding ≥ {share}")
MINUTES_TARGET = Prose("≤ {minutes} training minutes")
BACKBONE = Prose(
    "Grounding: with the frozen MobileNetV2 the attention peak lands on the named object for {frozen} of the words "
    "(chance {chance}): well above chance, well below the from-scratch cnn's {cnn}. A likely reason: each cell of the "
    "backbone's last layer sees much of the {backbone_px}-px image, so a cell next to an object already says what it "
    "is, while the cnn's cells see only their neighbourhood. (An earlier figure here put the backbone at chance and "
    "built a diagnosis on it; it compared boxes in the {scene_px}-px scene's pixels with cells of a {backbone_px}-px "
    "grid. Boxes and cells are now both fractions of the image, which tests check.)"
)
PENALTY = Prose(
    "The doubly stochastic penalty (every cell attended about once per caption) pulled attention off the objects on "
    "images that are mostly background, so it is off by default; a recipe search on a borrowed GPU (exploration, not "
    "benchmarked) also found that training each image with all its captions in one batch, cheaper on a CPU, grounded "
    "worse than batches whose captions each come from a different image."
)
EXAMPLES = Prose("Greedy `sat` captions of the first test images:")
EXAMPLE = Prose("- `{image}`: {caption}")
BEAM = f"beam{d.REPORTED_BEAM}"  # the beam-search figures' field


def grounding(r: dict) -> str:
    if r.get("grounding") is None:
        return NO_ATTENTION
    return GROUNDING(share=pct(r["grounding"]), words=f"{r['grounding_words']:,}", chance=pct(r["grounding_chance"]))


def scored_on(r: dict) -> str:
    return SCORED_ON(split=r["split"], images=f"{r['images']:,}") if "split" in r else "val split"


FIELD_ROWS = [
    (Prose("scored on")(), scored_on),
    (Prose("BLEU-1 / BLEU-4 (greedy)")(), lambda r: TWO(first=fixed(r["bleu1"], 3), second=fixed(r["bleu4"], 3))),
    (Prose("BLEU-4 (beam {beam})")(beam=d.REPORTED_BEAM), lambda r: fixed(r[BEAM]["bleu4"], 3)),
    (Prose("METEOR")(), lambda r: fixed(r["meteor"], 3) if "meteor" in r else "—"),
    (Prose("ROUGE-L")(), lambda r: fixed(r["rouge_l"], 3)),
    (
        Prose("CIDEr (greedy / beam {beam})")(beam=d.REPORTED_BEAM),
        lambda r: TWO(first=fixed(r["cider"], 3), second=fixed(r[BEAM]["cider"], 3)),
    ),
    (Prose("attention grounding")(), grounding),
    (Prose("validation BLEU-4 of the kept checkpoint")(), lambda r: fixed(r["val_bleu4_selected"], 3)),
    (Prose("training wall minutes")(), lambda r: num(r["train_minutes"])),
    (
        Prose("encoder, input, epochs")(),
        lambda r: ENCODER(encoder=r["encoder"], size=r["image_size"], epochs=r["epochs"]),
    ),
    (Prose("trained parameters (before BatchNorm folding)")(), lambda r: num(r["parameters"])),
    (Prose("CPU")(), lambda r: r.get("cpu", "?")),
    (Prose("made by (command, commit)")(), made_by),
]


def sat_targets(sat: dict) -> list[str]:
    items = [
        (BLEU_TARGET(bleu=short(d.CAPTION_BLEU4)), sat["bleu4"] >= d.CAPTION_BLEU4),
        (GROUNDING_TARGET(share=level(d.CAPTION_GROUNDING)), (sat.get("grounding") or 0) >= d.CAPTION_GROUNDING),
        (MINUTES_TARGET(minutes=d.CAPTION_MINUTES), sat["train_minutes"] <= d.CAPTION_MINUTES),
    ]
    return [TARGETS(issue=d.ISSUE_CAPTIONING, checks=checks(items)), ""]


def scenes_section(scenes: dict | None, mobilenet: dict | None) -> list[str]:
    if not scenes:
        return [MISSING()]
    names = [n for n in ("sat", "nic", "mrnn") if n in scenes]
    if mobilenet and "sat" in mobilenet:
        # The frozen MobileNetV2 option, beside the from-scratch cnn, for its grounding.
        scenes = {**scenes, "sat, mobilenet": mobilenet["sat"]}
        names.insert(1, "sat, mobilenet")
    test = next((r["images"] for r in scenes.values() if isinstance(r, dict) and r.get("split") == "test"), None)
    rows = [
        HEADING(),
        "",
        INTRO(
            seed=d.SCENES_SEED, images=f"{d.SCENES_IMAGES:,}", val_share=level(d.SCENES_VAL_FRACTION), test=num(test)
        ),
        "",
        *comparison_table(scenes, names, FIELD_ROWS),
    ]
    if "sat" in scenes:
        rows += sat_targets(scenes["sat"])
    if "sat" in scenes and "sat, mobilenet" in scenes:
        cnn, frozen = scenes["sat"], scenes["sat, mobilenet"]
        rows += [
            BACKBONE(
                frozen=pct(frozen["grounding"]),
                chance=pct(frozen["grounding_chance"]),
                cnn=pct(cnn["grounding"]),
                backbone_px=frozen["image_size"],
                scene_px=d.SCENES_SIDE,
            ),
            "",
        ]
    rows += [PENALTY(), ""]
    examples = scenes.get("sat", {}).get("examples", [])
    if examples:
        rows += [EXAMPLES(), "", *(EXAMPLE(image=e["image"], caption=e["caption"]) for e in examples), ""]
    return rows
