"""Small sat models of both tasks saved before the two decoders shared one attention + GRU step (issue 33) read the
same today: the model files in tests/fixtures/ load with the same parameter names, a seeded build draws the same
weights in the same parameter order (what a resumed run's optimizer state follows), and logits, losses, greedy and
beam-3 readings and the unrolled export graphs are bit-identical to the outputs recorded then.

tests/fixtures/write_sat_fixtures.py wrote the fixtures with `saved_outputs` below; rerun it only to record a
deliberate change of outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open

from imcaption.captcha.reading_types import RECOGNIZER_FORMAT
from imcaption.captcha.recognizer import TorchRecognizer
from imcaption.captioning.reading_types import CAPTIONER_FORMAT
from imcaption.captioning.task import sequence_loss
from imcaption.deploy.caption_onnx import CaptionGreedyGraph
from imcaption.deploy.onnx_export import GreedyGraph, for_export
from imcaption.engine.checkpoint import load_model_file
from imcaption.models import RecognizerConfig, build_recognizer
from imcaption.models.caption_decoders import CaptionerConfig, CaptionModel
from imcaption.models.encoder import ConvEncoder, EncoderConfig
from imcaption.models.sat import masked_cross_entropy
from imcaption.text.char_tokenizer import END, PAD, START
from imcaption.text.word_tokenizer import PAD as WORD_PAD

FIXTURES = Path(__file__).parent / "fixtures"
RECOGNIZER_FILE = "sat_recognizer.safetensors"
# A from-scratch CNN captioner (pixels in), and one over cached backbone features (a learned position code).
CAPTIONER_FILES = {"cnn": "sat_captioner_cnn.safetensors", "features": "sat_captioner_features.safetensors"}
OUTPUTS_FILE = "sat_outputs.safetensors"
CAPTION_MAX_LENGTH = 7
Outputs = dict[str, torch.Tensor]


def recognizer_config() -> RecognizerConfig:
    encoder = EncoderConfig(32, 64, channels=(4, 8, 8, 16))
    return RecognizerConfig(kind="sat", encoder=encoder, hidden=24, embed=8, attention=12)


def captioner_config(kind: str) -> CaptionerConfig:
    feature_dim = 16 if kind == "cnn" else 10
    return CaptionerConfig("sat", feature_dim, vocab_size=23, embed=12, hidden=20, attention=8, dropout=0.2,
                           grid_cells=0 if kind == "cnn" else 6)  # fmt: skip


def build_captioner(kind: str) -> CaptionModel:
    encoder = ConvEncoder(EncoderConfig(32, 32, (4, 8, 8, 16), column_stride=16)) if kind == "cnn" else None
    return CaptionModel(captioner_config(kind), encoder)


def seeded_recognizer() -> torch.nn.Module:
    """The recognizer as seed 0 builds it, its <pad>, <start> and <end> scores pushed down so that its untrained
    readings are letters rather than empty words."""
    torch.manual_seed(0)
    model = build_recognizer(recognizer_config())
    with torch.no_grad():
        model.output[-1].bias[[PAD, START, END]] = -30.0
    return model


def seeded_captioner(kind: str) -> CaptionModel:
    """The captioner as seed 1 (2 for features) builds it, its first word ids' scores pushed down as above."""
    torch.manual_seed(1 if kind == "cnn" else 2)
    model = build_captioner(kind)
    with torch.no_grad():
        model.decoder.output[-1].bias[:4] = -10.0
    return model


def fixture_inputs() -> Outputs:
    """The inputs the outputs were recorded on (saved with them, so no generator's stream matters)."""
    rng = np.random.default_rng(33)
    targets = rng.integers(3, 29, (3, 6))
    targets[:, 5] = END
    targets[0, 3:] = [END, PAD, PAD]
    tokens = rng.integers(4, 23, (3, CAPTION_MAX_LENGTH))
    tokens[:, 0], tokens[1, 4:] = 2, [3, WORD_PAD, WORD_PAD]
    return {
        "recognizer_pixels": torch.from_numpy(rng.integers(0, 256, (3, 32, 64, 3), dtype=np.uint8)),
        "recognizer_targets": torch.from_numpy(targets),
        "caption_pixels": torch.from_numpy(rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)),
        "caption_features": torch.from_numpy(rng.standard_normal((3, 6, 10), dtype=np.float32)),
        "caption_tokens": torch.from_numpy(tokens),
    }


def ragged(rows: list[list[int]]) -> list[list[int]]:
    return [list(map(int, row)) for row in rows]


@torch.inference_mode()
def recognizer_outputs(folder: Path, inputs: Outputs) -> tuple[Outputs, dict[str, Any]]:
    reader = TorchRecognizer.load(folder / RECOGNIZER_FILE, precision="fp32")
    model, pixels, targets = reader.model, inputs["recognizer_pixels"], inputs["recognizer_targets"]
    images = pixels.permute(0, 3, 1, 2).float()
    logits = model(images, targets)
    loss, exact = model.loss(images, targets, label_smoothing=0.1)
    greedy, beam = model.decode(images), model.decode(images, beam=3)
    graph_logits, graph_attention = GreedyGraph(for_export(model), "sat").eval()(pixels)
    readings = reader.decode_pixels(pixels.numpy(), beam=3)
    tensors = {
        "recognizer.logits": logits,
        "recognizer.loss": torch.stack([loss, masked_cross_entropy(logits, targets)]),
        "recognizer.exact": exact,
        "recognizer.greedy_attention": greedy.attention,
        "recognizer.greedy_confidences": torch.tensor(greedy.confidences),
        "recognizer.beam_confidences": torch.tensor(beam.confidences),
        "recognizer.graph_logits": graph_logits,
        "recognizer.graph_attention": graph_attention,
    }
    lists = {"recognizer.greedy_ids": ragged(greedy.ids), "recognizer.beam_ids": ragged(beam.ids),
             "recognizer.beam_words": readings.words, "recognizer.greedy_log_probs": greedy.id_log_probs}  # fmt: skip
    return tensors, lists


def load_captioner(folder: Path, kind: str) -> CaptionModel:
    model = build_captioner(kind)
    model.load_state_dict(load_model_file(folder / CAPTIONER_FILES[kind], CAPTIONER_FORMAT)["model"], strict=True)
    return model.eval()


@torch.inference_mode()
def captioner_outputs(folder: Path, inputs: Outputs) -> tuple[Outputs, dict[str, Any]]:
    from imcaption.captioning.model_spec import search_captions

    tensors: Outputs = {}
    lists: dict[str, Any] = {}
    tokens = inputs["caption_tokens"]
    for kind, model_input in (("cnn", inputs["caption_pixels"]), ("features", inputs["caption_features"])):
        model = load_captioner(folder, kind)
        batch = model_input.permute(0, 3, 1, 2).float() if kind == "cnn" else model_input
        logits, attention = model(batch, tokens)
        losses = [sequence_loss(logits, tokens[:, 1:], attention=attention, penalty=penalty) for penalty in (0, 1)]
        greedy_ids, greedy_attention = search_captions(model, batch, CAPTION_MAX_LENGTH)
        beam_ids, _ = search_captions(model, batch, CAPTION_MAX_LENGTH, beam=3)
        tensors |= {f"{kind}.logits": logits, f"{kind}.attention": attention, f"{kind}.loss": torch.stack(losses),
                    f"{kind}.greedy_attention": greedy_attention}  # fmt: skip
        lists |= {f"{kind}.greedy_ids": ragged(greedy_ids), f"{kind}.beam_ids": ragged(beam_ids)}
        if kind == "cnn":  # the export graph reads pixels
            graph = CaptionGreedyGraph(model, CAPTION_MAX_LENGTH).eval()(model_input)
            tensors |= {"cnn.graph_logits": graph[0], "cnn.graph_attention": graph[1]}
    return tensors, lists


def parameter_orders() -> dict[str, list[str]]:
    """Parameter names in registration order, of the models as training builds them."""
    models = {"recognizer": build_recognizer(recognizer_config())}
    models |= {f"captioner_{kind}": build_captioner(kind) for kind in CAPTIONER_FILES}
    return {name: [key for key, _ in model.named_parameters()] for name, model in models.items()}


def saved_outputs(folder: Path, inputs: Outputs) -> tuple[Outputs, dict[str, Any]]:
    """Everything the fixture records, computed by the code at hand from the model files in `folder`."""
    recognizer_tensors, recognizer_lists = recognizer_outputs(folder, inputs)
    captioner_tensors, captioner_lists = captioner_outputs(folder, inputs)
    lists = {**recognizer_lists, **captioner_lists, "parameter_orders": parameter_orders()}
    return {**recognizer_tensors, **captioner_tensors}, lists


def read_fixture() -> tuple[Outputs, Outputs, dict[str, Any]]:
    with safe_open(str(FIXTURES / OUTPUTS_FILE), framework="pt") as handle:
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        lists = json.loads(handle.metadata()["lists"])
    inputs = {name.removeprefix("input."): t for name, t in tensors.items() if name.startswith("input.")}
    return inputs, {name: t for name, t in tensors.items() if not name.startswith("input.")}, lists


@pytest.fixture(scope="module")
def fixture() -> tuple[Outputs, Outputs, dict[str, Any]]:
    return read_fixture()


def test_the_saved_model_files_load_and_a_seeded_build_draws_the_same_weights() -> None:
    saved = load_model_file(FIXTURES / RECOGNIZER_FILE, RECOGNIZER_FORMAT)["model"]
    built = seeded_recognizer().state_dict()
    assert list(saved) and set(saved) == set(built)
    assert all(torch.equal(built[name], saved[name]) for name in saved)
    for kind, path in CAPTIONER_FILES.items():
        saved = load_model_file(FIXTURES / path, CAPTIONER_FORMAT)["model"]
        built = seeded_captioner(kind).state_dict()
        assert set(saved) == set(built) and all(torch.equal(built[name], saved[name]) for name in saved), kind


def test_parameters_keep_their_names_and_order(fixture: tuple[Outputs, Outputs, dict[str, Any]]) -> None:
    assert parameter_orders() == fixture[2]["parameter_orders"]


def test_saved_models_give_bit_identical_outputs(fixture: tuple[Outputs, Outputs, dict[str, Any]]) -> None:
    inputs, expected, expected_lists = fixture
    tensors, lists = saved_outputs(FIXTURES, inputs)
    assert set(tensors) == set(expected)
    different = [name for name in expected if not torch.equal(tensors[name], expected[name])]
    assert not different, different
    assert lists == expected_lists
    # The readings compared are letters and words, not empty sequences.
    assert all(len(ids) > 2 for ids in lists["recognizer.greedy_ids"] + lists["cnn.greedy_ids"])


def test_both_tokenizers_pad_with_the_same_id() -> None:
    assert PAD == WORD_PAD == 0  # one sequence loss ignores <pad> for both tasks
