"""The whole assignment in one resumable call: data, cache, training, validation, test answers, score."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imcaption.captcha.cached_reading import read_cached, search_name
from imcaption.captcha.dataset import LABEL_FILE, TEST_LABEL_FILE, CaptchaDataset
from imcaption.captcha.generator import generate_dataset
from imcaption.captcha.image_cache import ImageCache, ensure_cache
from imcaption.captcha.labels import LabelRow, read_labels, write_labels
from imcaption.captcha.metrics import RecognitionReport, exact_match, recognition_report
from imcaption.captcha.recognizer import Recognizer
from imcaption.captcha.task import RECOGNIZER_FORMAT, CaptchaTask, CaptchaTrainConfig
from imcaption.captcha.vocabulary import default_vocabulary
from imcaption.engine.checkpoint import load_checkpoint
from imcaption.engine.config import with_options
from imcaption.engine.run import open_run
from imcaption.engine.search import LexiconTrie
from imcaption.files import write_text_atomically
from imcaption.images import ImageSize
from imcaption.locks import folder_lock
from imcaption.manifest import read_manifest

# The widest beam the answer file may be searched with over the training labels (bench/captcha_full.py measures
# beams 1, 3 and 5 on validation).
LEXICON_BEAM = 5
# The copies each image is read as by the widest answer search (test-time augmentation, models/views.py; that many
# times the reading time; bench/captcha_views.py measures 1, 3 and 5 on validation).
ANSWER_VIEWS = 5


@dataclass(frozen=True)
class AssignmentResult:
    val_exact_match: float  # with the search the answers were written with
    val_exact_match_open: float  # with the open-vocabulary search, whatever the answers used
    answer_search: str
    test_exact_match: float | None
    answers: Path
    checkpoint: Path


@dataclass(frozen=True)
class AnswerSearch:
    """One way of searching for a reading: the beam width, and the words it may output (None: any)."""

    name: str
    beam: int
    lexicon: LexiconTrie | None = None
    views: int = 1  # copies of each image read, shifted, their log-probabilities averaged


def answer_searches(recognizer: Recognizer, dataset: CaptchaDataset) -> list[AnswerSearch]:
    """The searches the answer file is chosen from, open vocabulary first: the assignment's words come from one
    closed list, so holding the search to the words of the training labels is a fair use of the training data.
    Held to a lexicon, a wider beam keeps more of the words a wrong first letter would rule out; read as several
    shifted copies, a letter one copy misses the others often keep (the widest search, and the slowest)."""
    beam = recognizer.answer_beam
    words = sorted(set(dataset.words(dataset.split("train"))))
    lexicon = recognizer.lexicon(words)
    held_beams = sorted({beam, LEXICON_BEAM}) if beam > 1 else [beam]  # greedy-only backends: no beam to widen
    held_name = f"over the {len(words):,} training labels"
    held = [AnswerSearch(f"{search_name(b)} {held_name}", b, lexicon) for b in held_beams]
    if beam > 1:  # a step-by-step decoder: its copies can be averaged at each step
        views_name = f"{search_name(held_beams[-1])} {held_name}, {ANSWER_VIEWS} views"
        held.append(AnswerSearch(views_name, held_beams[-1], lexicon, ANSWER_VIEWS))
    return [AnswerSearch(search_name(beam), beam), *held]


def run_assignment(
    data_dir: str | Path,
    run_dir: str | Path,
    options: dict[str, Any] | None = None,
    count: int = 140_000,
    progress: bool = True,
) -> AssignmentResult:
    """Generate (or use) the dataset, cache it, train (or resume) in RUN_DIR, score validation and write the
    test answers. RUN_DIR is held for the whole job: a second assignment into it is refused, naming the first."""
    with folder_lock(run_dir, "running the assignment", wait=False):
        return _run_locked(Path(data_dir), Path(run_dir), options, count, progress)


def _run_locked(
    data_dir: Path, run_dir: Path, options: dict[str, Any] | None, count: int, progress: bool
) -> AssignmentResult:
    manifest = read_manifest(data_dir)
    if (manifest is None and (data_dir / LABEL_FILE).is_file()) or (manifest or {}).get("complete"):
        print(f"[1/5] using the dataset in {data_dir}")
    else:  # nothing there yet, or a generation that was interrupted: draw what is missing
        print(f"[1/5] generating {count:,} captchas into {data_dir}")
        generate_dataset(data_dir, default_vocabulary(), count=count, seed=0, progress=progress)
    dataset = CaptchaDataset.open(data_dir)
    print("      " + dataset.describe())
    print("[2/5] image cache")
    ensure_cache(dataset, _training_input_size(run_dir, options or {}), progress=progress)
    print(f"[3/5] training in {run_dir}")
    resume = (run_dir / "last.pt").is_file()
    trainer = open_run(CaptchaTask, data_dir, run_dir, options, resume=resume, progress=progress)
    if trainer.is_done():
        print(f"      already trained ({trainer.state.step:,} steps)")
    else:
        if trainer.state.step:
            print(f"      resuming at {trainer.describe_stop()}")
        trainer.run()
    checkpoint = run_dir / "best.pt"
    recognizer = Recognizer.load(checkpoint, str(trainer.task.device))
    cache = ensure_cache(dataset, recognizer.size, progress=progress)
    chosen, report, open_exact_match = _choose_answer_search(recognizer, cache, dataset, run_dir, progress)
    test = dataset.split("test")
    answers = run_dir / "answers.txt"
    decoded = read_cached(
        recognizer, cache, test.indices, beam=chosen.beam, lexicon=chosen.lexicon, progress=progress, views=chosen.views
    )
    write_labels(answers, [LabelRow(i, w or "-") for i, w in zip(test.indices, decoded.words, strict=True)])
    test_score = _score(answers, data_dir / TEST_LABEL_FILE)
    scored = f", exact match {test_score:.4%} against {TEST_LABEL_FILE}" if test_score is not None else ""
    print(f"[5/5] test answers ({chosen.name}, the best on validation): {answers} ({len(test):,} lines){scored}")
    return AssignmentResult(report.exact_match, open_exact_match, chosen.name, test_score, answers, checkpoint)


def _choose_answer_search(
    recognizer: Recognizer, cache: ImageCache, dataset: CaptchaDataset, run_dir: Path, progress: bool
) -> tuple[AnswerSearch, RecognitionReport, float]:
    """Validate with each answer search, print and save the scores; -> the best search, its validation report,
    and the open-vocabulary search's exact match."""
    val = dataset.split("val")
    print(f"[4/5] validation: {len(val):,} images")
    searches = answer_searches(recognizer, dataset)
    reports = []
    for search in searches:
        decoded = read_cached(
            recognizer,
            cache,
            val.indices,
            beam=search.beam,
            lexicon=search.lexicon,
            progress=progress,
            views=search.views,
        )
        reports.append(recognition_report(list(val.indices), decoded.words, dataset.words(val)))
        print(f"      {search.name}: exact match {reports[-1].exact_match:.4%}, CER {reports[-1].cer:.4%}")
    # The best on validation writes the answers; a tie keeps the open vocabulary (first), which needs no word list.
    best = max(range(len(searches)), key=lambda i: (reports[i].exact_match, -i))
    chosen, report = searches[best], reports[best]
    by_search = {search.name: r.exact_match for search, r in zip(searches, reports, strict=True)}
    summary = {**report.summary(), "search": chosen.name, "exact_match_by_search": by_search}
    write_text_atomically(run_dir / "val_report.json", json.dumps(summary, indent=2) + "\n")
    return chosen, report, reports[0].exact_match


def _score(answers: Path, labels: Path) -> float | None:
    if not labels.is_file():
        return None
    truth = read_labels(labels)
    given = {row.index: row.word for row in read_labels(answers, check_words=False)}
    return exact_match([given.get(row.index, "") for row in truth], [row.word for row in truth])


def _training_input_size(run_dir: Path, options: dict[str, Any]) -> ImageSize:
    """The input size the training step will read: a run being resumed keeps the size it was saved with."""
    if (run_dir / "last.pt").is_file():
        return ImageSize(**load_checkpoint(run_dir / "last.pt", RECOGNIZER_FORMAT)["image_size"])
    return with_options(CaptchaTrainConfig(), options).input_size
