"""ONNX export and the ONNX Runtime readers: same words (captions) and logits as PyTorch, for every recognizer kind
and every caption decoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from imcaption import Recognizer
from imcaption.api import Captioner
from imcaption.captcha.dataset import CaptchaDataset
from imcaption.captcha.recognizer import Recognizer as TorchRecognizer
from imcaption.captioning.task import CaptionModelSpec, build_caption_model
from imcaption.cli import main
from imcaption.deploy.caption_onnx import CaptionGreedyGraph, OnnxCaptioner, greedy_caption_ids, write_caption_onnx
from imcaption.deploy.onnx_export import (
    GreedyGraph,
    export_onnx,
    for_export,
    interleave_input,
    reads_pixels,
    write_onnx,
)
from imcaption.deploy.onnx_reader import OnnxRecognizer, greedy_words
from imcaption.engine.checkpoint import CheckpointError
from imcaption.images import ImageSize
from imcaption.models import EncoderConfig, RecognizerConfig, build_recognizer
from imcaption.text.char_tokenizer import END, CharTokenizer
from imcaption.text.word_tokenizer import END as WORD_END
from imcaption.text.word_tokenizer import WordTokenizer


@pytest.fixture(scope="module")
def sat_onnx(trained_sat: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(trained_sat, tmp_path_factory.mktemp("onnx") / "sat.onnx")


def _val_pixels(easy_dataset: Path, recognizer: TorchRecognizer, count: int) -> tuple[np.ndarray, list[Path]]:
    dataset = CaptchaDataset.open(easy_dataset)
    paths = [dataset.image_path(i) for i in list(dataset.split("val").indices)[:count]]
    return recognizer.inputs(paths), paths


def _torch_scores(recognizer: TorchRecognizer, pixels: np.ndarray) -> tuple[torch.Tensor, ...]:
    with torch.inference_mode():
        return GreedyGraph(recognizer.model, recognizer.config.kind).eval()(torch.from_numpy(pixels))


def test_trained_sat_reads_the_same_words_and_logits_through_onnx_runtime(
    trained_sat: Path, sat_onnx: Path, easy_dataset: Path
) -> None:
    torch_reader = Recognizer.load(trained_sat, precision="fp32")  # ONNX Runtime reads fp32
    onnx_reader = Recognizer.load(sat_onnx)
    assert isinstance(onnx_reader, OnnxRecognizer) and onnx_reader.size == torch_reader.size
    pixels, _ = _val_pixels(easy_dataset, torch_reader, 64)
    expected, got = torch_reader.decode_pixels(pixels), onnx_reader.decode_pixels(pixels)
    assert got.words == expected.words
    assert sum(map(bool, got.words)) > 48  # a trained model, not an empty one
    np.testing.assert_allclose(got.confidences, expected.confidences, atol=1e-4)
    np.testing.assert_allclose(got.attention, np.asarray(expected.attention), atol=1e-4)
    logits = onnx_reader.scores(pixels)["logits"]
    np.testing.assert_allclose(logits, _torch_scores(torch_reader, pixels)[0].numpy(), atol=1e-4)
    # Each character's probability is its own step's; the word's also includes <end>, so it is no larger.
    for word, chars, confidence in zip(got.words, got.char_confidences, got.confidences, strict=True):
        assert len(chars) == len(word) and np.prod(chars) >= confidence - 1e-6
    # PyTorch's greedy search gives each letter's probability too, the same as ONNX Runtime's.
    for torch_chars, onnx_chars in zip(expected.char_confidences, got.char_confidences, strict=True):
        np.testing.assert_allclose(torch_chars, onnx_chars, atol=1e-4)


@pytest.mark.parametrize("kind", ["par", "ctc", "crnn"])
def test_every_recognizer_kind_exports_with_matching_logits(kind: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = RecognizerConfig(kind=kind, encoder=EncoderConfig(64, 128))
    model = build_recognizer(config).eval()
    model.encoder.fuse_batch_norm()
    torch_reader = TorchRecognizer(model, config, CharTokenizer(), ImageSize(64, 128), torch.device("cpu"))
    onnx_reader = OnnxRecognizer.load(write_onnx(torch_reader, tmp_path / f"{kind}.onnx"))
    pixels = np.random.default_rng(0).integers(0, 256, (5, 64, 128, 3), dtype=np.uint8)
    name = "log_probs" if kind in ("ctc", "crnn") else "logits"
    np.testing.assert_allclose(
        onnx_reader.scores(pixels)[name], _torch_scores(torch_reader, pixels)[0].numpy(), atol=1e-4
    )
    expected, got = torch_reader.decode_pixels(pixels), onnx_reader.decode_pixels(pixels)
    assert got.words == expected.words and any(got.words)  # random weights still read letters, not nothing
    np.testing.assert_allclose(got.confidences, expected.confidences, rtol=1e-3)
    for torch_chars, onnx_chars in zip(expected.char_confidences, got.char_confidences, strict=True):
        np.testing.assert_allclose(torch_chars, onnx_chars, rtol=1e-3)
    # Answers come from a beam where the model has beam search; ONNX Runtime and CTC read greedily.
    assert (torch_reader.answer_beam, onnx_reader.answer_beam) == (3 if kind == "par" else 1, 1)


def test_the_exported_graph_reads_the_pixels_as_they_come_with_the_same_first_layer(tmp_path: Path) -> None:
    import onnx

    torch.manual_seed(0)
    config = RecognizerConfig(kind="sat", encoder=EncoderConfig(64, 128))
    model = build_recognizer(config).eval()
    model.encoder.prepare_for_reading("fp32")
    exported = for_export(model)
    assert reads_pixels(exported) and not reads_pixels(model)  # a copy: the reader's own model stays as it was
    images = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (3, 64, 128, 3), dtype=np.uint8))
    with torch.inference_mode():
        expected = model.encoder.layers[0](images.permute(0, 3, 1, 2))  # centring, padding, stride-2 conv, ReLU
        got = exported.encoder.layers[0](images)
    assert got.shape == expected.shape and expected.abs().max() > 1
    torch.testing.assert_close(got, expected.contiguous(), atol=1e-4, rtol=1e-5)
    reader = TorchRecognizer(model, config, CharTokenizer(), ImageSize(64, 128), torch.device("cpu"))
    ops = [node.op_type for node in onnx.load(write_onnx(reader, tmp_path / "sat.onnx")).graph.node]
    before_conv = ops[: ops.index("Conv")]
    assert "DequantizeLinear" in before_conv and not {"Transpose", "Cast", "Sub"} & set(before_conv)


def test_the_exported_graph_moves_the_features_to_channels_last_right_after_the_last_layer(tmp_path: Path) -> None:
    """Where ONNX Runtime can fold the move into bringing the features out of its convolution layout."""
    import onnx

    torch.manual_seed(0)
    config = RecognizerConfig(kind="sat", encoder=EncoderConfig(64, 128))
    model = build_recognizer(config).eval()
    model.encoder.prepare_for_reading("fp32")
    reader = TorchRecognizer(model, config, CharTokenizer(), ImageSize(64, 128), torch.device("cpu"))
    nodes = onnx.load(write_onnx(reader, tmp_path / "sat.onnx")).graph.node
    pooled = next(node.output[0] for node in nodes if node.op_type == "MaxPool")
    readers = [node for node in nodes if pooled in node.input]
    assert [node.op_type for node in readers] == ["Transpose"]
    assert list(readers[0].attribute[0].ints) == [0, 2, 3, 1]


def test_an_encoder_whose_mean_is_no_pixel_value_keeps_its_first_layer() -> None:
    model = build_recognizer(RecognizerConfig(kind="ctc", encoder=EncoderConfig(64, 128))).eval()
    model.encoder.mean.fill_(100.5)  # a DequantizeLinear zero point must be a whole uint8
    model.encoder.prepare_for_reading("fp32")
    first = model.encoder.layers[0]
    assert not interleave_input(model.encoder) and model.encoder.layers[0] is first


def test_letter_confidences_skip_what_the_tokenizer_skips() -> None:
    from imcaption.captcha.recognizer import letter_confidences
    from imcaption.text.char_tokenizer import PAD, START

    a, b = CharTokenizer().encode("ab")
    log_probs = np.log([0.9, 0.5, 0.8, 0.7, 0.6])
    # <start> and <pad> mid-word decode to nothing, so they take no confidence: "a" gets 0.9, "b" 0.7.
    assert letter_confidences([a, START, PAD, b, END], log_probs) == pytest.approx([0.9, 0.7])


def test_greedy_words_stop_at_end_and_multiply_the_chosen_probabilities() -> None:
    logits = np.full((2, 4, 6), -10.0)
    logits[0, 0, 3], logits[0, 1, 4], logits[0, 2, END], logits[0, 3, 5] = 2.0, 1.0, 3.0, 9.0
    logits[1, :, 5] = 1.0  # never ends: every step counts
    ids, log_conf, steps, _ = greedy_words(logits)
    assert ids[0] == [3, 4, END] and steps.tolist() == [3, 4] and ids[1] == [5, 5, 5, 5]
    probs = np.exp(logits[0] - np.log(np.exp(logits[0]).sum(-1, keepdims=True)))
    assert np.exp(log_conf[0]) == pytest.approx(probs[0, 3] * probs[1, 4] * probs[2, END])


def test_onnx_reader_refuses_beam_and_foreign_or_damaged_files(sat_onnx: Path, tmp_path: Path) -> None:
    reader = Recognizer.load(sat_onnx)
    with pytest.raises(ValueError, match="decodes greedily"):
        reader.read(np.zeros((64, 128, 3), np.uint8), beam=3)
    import onnx

    foreign = onnx.load(str(sat_onnx))
    del foreign.metadata_props[:]
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    with pytest.raises(CheckpointError, match="not exported by imcaption"):
        Recognizer.load(tmp_path / "foreign.onnx")
    (tmp_path / "damaged.onnx").write_bytes(sat_onnx.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="cannot read ONNX model"):
        Recognizer.load(tmp_path / "damaged.onnx")


def test_only_the_api_picks_the_backend_by_the_file(tmp_path: Path) -> None:
    """imcaption.Recognizer.load reads an .onnx file with ONNX Runtime; the PyTorch reader below it refuses one by
    name, and exporting one again is refused before any work."""
    config = RecognizerConfig(kind="ctc", encoder=EncoderConfig(32, 64))
    model = build_recognizer(config).eval()
    torch_reader = Recognizer(model, config, CharTokenizer(), ImageSize(32, 64), torch.device("cpu"))
    onnx_file = write_onnx(torch_reader, tmp_path / "ctc.onnx")
    assert isinstance(Recognizer.load(onnx_file), OnnxRecognizer)
    with pytest.raises(CheckpointError, match="is an ONNX model: load it with imcaption.Recognizer.load"):
        TorchRecognizer.load(onnx_file)
    with pytest.raises(ValueError, match="already an ONNX model"):
        export_onnx(onnx_file, tmp_path / "again.onnx")
    with pytest.raises(ValueError, match="fp32 on the CPU"):
        Recognizer.load(onnx_file, precision="bf16")


def test_cli_exports_onnx_and_reads_with_it(
    trained_sat: Path, easy_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model.onnx"
    assert main(["captcha", "export", str(trained_sat), "--onnx", str(out)]) == 0
    assert "ONNX model" in capsys.readouterr().out and out.stat().st_size > 10_000
    dataset = CaptchaDataset.open(easy_dataset)
    image = str(dataset.image_path(list(dataset.split("val").indices)[0]))
    outputs = []
    # The checkpoint is read greedily in fp32 here (its defaults are a beam and, on bf16 hardware, bf16), as ONNX
    # models read.
    pytorch = [str(trained_sat), image, "--beam", "1", "--precision", "fp32"]
    for argv in (pytorch, [str(out), image], [str(trained_sat), image, "--onnx"]):
        assert main(["captcha", "read", *argv]) == 0
        outputs.append(capsys.readouterr().out.split())
    words = {line[1] for line in outputs}
    assert len(words) == 1, outputs  # PyTorch, the .onnx file and --onnx read the same word
    confidences = [float(line[2]) for line in outputs]
    assert confidences[1] == pytest.approx(confidences[0], abs=1e-3)
    assert confidences[2] == pytest.approx(confidences[0], abs=1e-3)


@pytest.mark.parametrize("decoder", ["sat", "nic", "mrnn"])
def test_every_caption_decoder_exports_with_matching_logits_and_captions(decoder: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    spec = CaptionModelSpec(decoder, "cnn", image_size=64, max_length=12)
    tokenizer = WordTokenizer.fit(["a red circle left of a blue square", "two green triangles"])
    model = build_caption_model(spec, tokenizer.vocab_size).eval()
    with torch.no_grad():  # untrained weights pick <pad> or <end>: words to compare, not empty captions
        model.decoder.output[-1].bias[: WORD_END + 1] = -10.0
    torch_captioner = Captioner(model, spec, tokenizer, torch.device("cpu"))
    onnx_captioner = Captioner.load(write_caption_onnx(torch_captioner, tmp_path / f"{decoder}.onnx"))
    assert isinstance(onnx_captioner, OnnxCaptioner) and onnx_captioner.spec == spec
    pixels = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    with torch.inference_mode():
        expected_logits = CaptionGreedyGraph(model, spec.max_length)(torch.from_numpy(pixels))[0].numpy()
    np.testing.assert_allclose(onnx_captioner.scores(pixels)["logits"], expected_logits, atol=1e-4)
    expected, got = torch_captioner.caption(pixels, attention=True), onnx_captioner.caption(pixels, attention=True)
    assert [c.text for c in got] == [c.text for c in expected] and any(c.text for c in got)
    for mine, theirs in zip(got, expected, strict=True):
        if decoder == "sat":
            assert mine.attention.shape == theirs.attention.shape and mine.attention.shape[1:] == (4, 4)
            np.testing.assert_allclose(mine.attention, theirs.attention, atol=1e-4)
        else:
            assert mine.attention is None and theirs.attention is None
    with pytest.raises(ValueError, match="greedily"):
        onnx_captioner.caption(pixels, beam=3)


def test_greedy_caption_ids_stop_at_end_and_report_the_longest() -> None:
    logits = np.full((2, 4, 6), -5.0, dtype=np.float32)
    logits[0, [0, 1, 2, 3], [4, WORD_END, 5, 5]] = 5.0  # a word, then <end>: two steps
    logits[1, [0, 1, 2, 3], [4, 5, 4, 5]] = 5.0  # never ends: every step
    ids, longest = greedy_caption_ids(logits)
    assert ids == [[4, WORD_END], [4, 5, 4, 5]] and longest == 4


def test_a_recognizer_onnx_is_not_taken_for_a_captioner(sat_onnx: Path) -> None:
    with pytest.raises(CheckpointError, match="imcaption-onnx-captioner"):
        OnnxCaptioner.load(sat_onnx)
