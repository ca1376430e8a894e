"""End to end on the easy set: learning, decoding, answer files, reading loose files, errors."""

import re
from pathlib import Path

import pytest
import torch
from PIL import Image

from imcaption.engine.checkpoint import CheckpointError, load_checkpoint, load_recognizer, save_checkpoint
from imcaption.cli import main
from imcaption.captcha.dataset import CaptchaDataset
from imcaption.captcha.image_cache import ensure_cache
from imcaption.engine.search import LexiconTrie, ctc_lexicon, decode_batch, sat_beam, sat_greedy
from imcaption.captcha.reading import as_batch, read_cached
from imcaption.models import EncoderConfig, RecognizerConfig, build_recognizer
from imcaption.text.char_tokenizer import CharTokenizer
from imcaption.captcha.task import TrainConfig, Trainer

from .conftest import EASY_WORDS


def _val_batch(easy_dataset: Path, size) -> tuple[torch.Tensor, list[str]]:  # noqa: ANN001
    dataset = CaptchaDataset.open(easy_dataset)
    split = dataset.split("val")
    cache = ensure_cache(dataset, size, progress=False)
    return as_batch(cache.read(split.indices)), dataset.words(split)


def test_sat_learns_to_read_held_out_images(trained_sat: Path, easy_dataset: Path) -> None:
    recognizer = load_recognizer(trained_sat)
    images, truths = _val_batch(easy_dataset, recognizer.size)
    words = decode_batch(recognizer.model, images, recognizer.tokenizer).words
    accuracy = sum(w == t for w, t in zip(words, truths, strict=True)) / len(truths)
    # About 75-80 % after this short run; broken teacher forcing or attention stays far below.
    assert accuracy >= 0.6, f"held-out exact match {accuracy:.2%}"


def test_beam_of_one_equals_greedy_and_wider_beams_score_no_worse(trained_sat: Path, easy_dataset: Path) -> None:
    recognizer = load_recognizer(trained_sat)
    images, _ = _val_batch(easy_dataset, recognizer.size)
    images = images[:64]
    with torch.no_grad():
        greedy = sat_greedy(recognizer.model, images, recognizer.tokenizer)
        beam1 = sat_beam(recognizer.model, images, recognizer.tokenizer, 1)
        beam4 = sat_beam(recognizer.model, images, recognizer.tokenizer, 4)
    assert beam1.words == greedy.words
    assert beam1.confidences == pytest.approx(greedy.confidences, rel=1e-4)
    assert all(b >= g - 1e-6 for b, g in zip(beam4.confidences, greedy.confidences, strict=True))


@pytest.mark.parametrize("kind", ["sat", "ctc"])
@pytest.mark.parametrize("beam", [1, 3])
def test_lexicon_constraint_only_outputs_listed_words(kind: str, beam: int) -> None:
    torch.manual_seed(1)
    model = build_recognizer(RecognizerConfig(kind, EncoderConfig(32, 64))).eval()
    tokenizer = CharTokenizer()
    lexicon = ["cat", "cats", "dog", "horse", "moon"]
    trie = LexiconTrie(lexicon, tokenizer)
    images = torch.rand(40, 3, 32, 64) * 255
    if kind == "ctc" and beam > 1:
        with pytest.raises(ValueError, match="beam search is for sat"):
            decode_batch(model, images, tokenizer, beam, trie)
        return
    decoded = decode_batch(model, images, tokenizer, beam, trie)
    assert set(decoded.words) <= set(lexicon)
    assert len(decoded.words) == 40


def test_ctc_lexicon_picks_the_most_likely_word() -> None:
    tokenizer = CharTokenizer()
    trie = LexiconTrie(["aab", "ab", "ba"], tokenizer)
    # Columns that spell a, blank, a, b: only 'aab' can explain them.
    columns = [[3], [0], [3], [4]]
    log_probs = torch.full((1, 4, 29), -20.0)
    for t, (cls,) in enumerate(columns):
        log_probs[0, t, cls] = 0.0
    assert ctc_lexicon(log_probs.log_softmax(-1), tokenizer, trie).words == ["aab"]


def test_resume_gives_the_same_next_step_loss(easy_dataset: Path, tmp_path: Path) -> None:
    config = TrainConfig(model="sat", epochs=2, batch_size=16, height=32, width=64, val_limit=16, max_steps=3)
    straight = Trainer(easy_dataset, tmp_path / "straight", config, progress=False)
    for step in range(4):
        expected, _ = straight.train_step(step)
    first = Trainer(easy_dataset, tmp_path / "split", config, progress=False)
    first.run()
    resumed = Trainer(easy_dataset, tmp_path / "split", config, progress=False)
    resumed.resume(tmp_path / "split" / "last.pt")
    assert resumed.state.step == 3
    loss, _ = resumed.train_step(3)
    assert loss == pytest.approx(expected, rel=1e-5)


def test_resume_accepts_a_run_saved_before_a_config_field_existed(easy_dataset: Path, tmp_path: Path) -> None:
    config = TrainConfig(model="sat", epochs=1, batch_size=16, height=32, width=64, val_limit=16, max_steps=1)
    Trainer(easy_dataset, tmp_path / "run", config, progress=False).run()
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    del state["model_config"]["encoder"]["column_stride"]  # as saved before square cells existed
    torch.save(state, tmp_path / "run" / "last.pt")
    resumed = Trainer(easy_dataset, tmp_path / "run", config, progress=False)
    resumed.resume(tmp_path / "run" / "last.pt")
    assert resumed.state.step == 1
    state["model_config"]["encoder"]["height"] = 64
    torch.save(state, tmp_path / "run" / "last.pt")
    with pytest.raises(ValueError, match="another model configuration"):
        resumed.resume(tmp_path / "run" / "last.pt")


def test_predict_writes_the_answer_file_and_score_reads_it(
    trained_sat: Path, easy_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    answers = tmp_path / "answers.txt"
    assert main(["predict", str(trained_sat), str(easy_dataset), "--out", str(answers), "--quiet"]) == 0
    lines = answers.read_text().splitlines()
    dataset = CaptchaDataset.open(easy_dataset)
    test = dataset.split("test")
    assert [line.split(" ")[0] for line in lines] == [f"a{i}" for i in test.indices]
    assert all(re.match(r"^a[0-9]+ [a-z-]+$", line) for line in lines)
    capsys.readouterr()
    assert main(["score", str(answers), str(easy_dataset / "test_labels.txt")]) == 0
    out = capsys.readouterr().out
    correct = int(out.split(" / ")[0].replace(",", ""))
    truths = dataset.words(test)
    assert correct == sum(line.split(" ")[1] == t for line, t in zip(lines, truths, strict=True))
    # Missing ids count as wrong.
    answers.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    main(["score", str(answers), str(easy_dataset / "test_labels.txt")])
    out = capsys.readouterr().out
    assert f"{len(lines) - len(lines) // 2:,} ids missing" in out
    assert int(out.split(" / ")[0]) <= len(lines) // 2


def test_evaluate_reports_and_lists_misreads(
    trained_sat: Path, easy_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    misread = tmp_path / "misread.txt"
    report = tmp_path / "report.json"
    args = [
        "evaluate",
        str(trained_sat),
        str(easy_dataset),
        "--misread",
        str(misread),
        "--json",
        str(report),
        "--quiet",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "val: 240 images, exact match" in out and "by length:" in out
    import json

    summary = json.loads(report.read_text())
    assert summary["count"] == 240
    assert len(misread.read_text().splitlines()) == round(240 * (1 - summary["exact_match"]))


def test_read_accepts_any_size_and_mode(
    trained_sat: Path, easy_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    dataset = CaptchaDataset.open(easy_dataset)
    recognizer = load_recognizer(trained_sat)
    cache = ensure_cache(dataset, recognizer.size, progress=False)
    val = dataset.split("val")
    reference = read_cached(recognizer, cache, val.indices, progress=False).words
    index = next(i for i, w in zip(val.indices, reference, strict=True) if w == dataset.labels[i])
    original = Image.open(dataset.image_path(index))
    variants = {
        "big.png": original.resize((900, 480)),
        "photo.jpg": original.resize((450, 240)),
        "gray.png": original.convert("L"),
        "alpha.png": original.convert("RGBA"),
    }
    paths = []
    for name, image in variants.items():
        paths.append(tmp_path / name)
        image.save(paths[-1], quality=95) if name.endswith(".jpg") else image.save(paths[-1])
    capsys.readouterr()
    assert main(["read", str(trained_sat), *map(str, paths), "--attention", str(tmp_path / "att.png")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("attention:")]
    assert len(lines) == 4
    for path, line in zip(paths, lines, strict=True):
        file, word, confidence = line.split(" ")
        assert file == str(path)
        assert 0.0 <= float(confidence) <= 1.0
        if path.name != "gray.png":  # color is part of what the model saw; gray is merely readable
            assert word == dataset.labels[index], path.name
        assert word in EASY_WORDS or word == "-"
    assert len(list(tmp_path.glob("att_*.png"))) == 4


def test_clear_errors(trained_sat: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert main(["read", str(trained_sat), str(corrupt)]) == 2
    assert f"cannot read image {corrupt}" in capsys.readouterr().err

    missing = tmp_path / "nope.pt"
    assert main(["read", str(missing), str(corrupt)]) == 2
    assert f"checkpoint not found: {missing}" in capsys.readouterr().err

    state = load_checkpoint(trained_sat)
    state["format_version"] = 99
    old = tmp_path / "old.pt"
    save_checkpoint(old, {k: v for k, v in state.items() if k not in ("format", "format_version", "imcaption")})
    state_on_disk = torch.load(old, weights_only=False)
    state_on_disk["format_version"] = 99
    torch.save(state_on_disk, old)
    with pytest.raises(CheckpointError, match="checkpoint format 99"):
        load_recognizer(old)

    not_ours = tmp_path / "weights.pt"
    torch.save({"state_dict": {}}, not_ours)
    assert main(["evaluate", str(not_ours), str(tmp_path)]) == 2
    assert "not an imcaption recognizer checkpoint" in capsys.readouterr().err
