"""The assignment's answer file is written with the search that reads validation best: open vocabulary, or held to
the words of the training labels (the assignment's vocabulary is closed)."""

from __future__ import annotations

import json
from pathlib import Path

from imcaption.captcha.cached_reading import read_cached
from imcaption.captcha.dataset import CaptchaDataset
from imcaption.captcha.image_cache import ensure_cache
from imcaption.captcha.pipeline import ANSWER_VIEWS, LEXICON_BEAM, _choose_answer_search, answer_searches
from imcaption.captcha.recognizer import Recognizer


def test_the_searches_are_the_open_one_first_then_one_held_to_the_training_labels(
    trained_sat: Path, easy_dataset: Path
) -> None:
    recognizer, dataset = Recognizer.load(trained_sat), CaptchaDataset.open(easy_dataset)
    searches = answer_searches(recognizer, dataset)
    assert [s.lexicon is None for s in searches] == [True, False, False, False]
    assert [s.beam for s in searches] == [recognizer.answer_beam, recognizer.answer_beam, LEXICON_BEAM, LEXICON_BEAM]
    assert [s.views for s in searches] == [1, 1, 1, ANSWER_VIEWS]
    training_words = set(dataset.words(dataset.split("train")))
    assert all(f"the {len(training_words):,} training labels" in s.name for s in searches[1:])
    # Held to the lexicon, nothing outside the training labels can be read, even from an image of noise.
    cache = ensure_cache(dataset, recognizer.size, progress=False)
    held = read_cached(recognizer, cache, dataset.split("val").indices, beam=searches[1].beam,
                       lexicon=searches[1].lexicon, progress=False)  # fmt: skip
    assert set(held.words) <= training_words


def test_the_answer_search_is_the_best_on_validation_and_both_scores_are_saved(
    trained_sat: Path, easy_dataset: Path, tmp_path: Path
) -> None:
    recognizer, dataset = Recognizer.load(trained_sat), CaptchaDataset.open(easy_dataset)
    cache = ensure_cache(dataset, recognizer.size, progress=False)
    chosen, report, open_score = _choose_answer_search(recognizer, cache, dataset, tmp_path, progress=False)
    saved = json.loads((tmp_path / "val_report.json").read_text())
    scores = saved["exact_match_by_search"]
    assert len(scores) == 4
    assert saved["search"] == chosen.name and saved["exact_match"] == report.exact_match
    assert report.exact_match == max(scores.values())
    assert open_score == scores[answer_searches(recognizer, dataset)[0].name]
    truth = dataset.words(dataset.split("val"))
    val = dataset.split("val").indices
    read = read_cached(
        recognizer, cache, val, beam=chosen.beam, lexicon=chosen.lexicon, progress=False, views=chosen.views
    )
    assert report.exact_match == sum(r == t for r, t in zip(read.words, truth, strict=True)) / len(truth)
