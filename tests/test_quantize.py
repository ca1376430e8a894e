"""`export --onnx --int8`: int8 convolutions calibrated on training images, read like any ONNX export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from imcaption import Recognizer
from imcaption.captcha.dataset import CaptchaDataset
from imcaption.cli import main
from imcaption.deploy.onnx_reader import OnnxRecognizer
from imcaption.deploy.quantize import calibration_pixels
from imcaption.images import ImageSize, load_image, to_model_input


@pytest.fixture(scope="module")
def int8_onnx(trained_sat: Path, easy_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("int8") / "sat-int8.onnx"
    assert main(["captcha", "export", str(trained_sat), "--onnx", str(out), "--int8", str(easy_dataset)]) == 0
    return out


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {output: node for node in model.graph.node for output in node.output}


def test_only_the_convolutions_read_int8_weights_and_dequantized_inputs(int8_onnx: Path) -> None:
    model = onnx.load(str(int8_onnx))
    producers = _producers(model)
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    assert convs
    for conv in convs:
        data, weights = (producers[name] for name in conv.input[:2])
        assert data.op_type == weights.op_type == "DequantizeLinear"
        assert numpy_helper.to_array(initializers[weights.input[0]]).dtype == np.int8
    # The decoding steps' matrices stay fp32: none reads a dequantized tensor.
    for node in model.graph.node:
        if node.op_type in ("MatMul", "Gemm"):
            assert all(producers.get(name) is None or producers[name].op_type != "DequantizeLinear"
                       for name in node.input)  # fmt: skip


def test_int8_export_reads_nearly_the_words_of_fp32_and_says_what_it_is(
    trained_sat: Path, int8_onnx: Path, easy_dataset: Path
) -> None:
    fp32, int8 = Recognizer.load(trained_sat, precision="fp32"), Recognizer.load(int8_onnx)
    assert isinstance(int8, OnnxRecognizer) and int8.precision == "int8"
    assert int8.described["calibration_images"] == 512
    dataset = CaptchaDataset.open(easy_dataset)
    val = list(dataset.split("val").indices)[:128]
    pixels = fp32.inputs([dataset.image_path(i) for i in val])
    truth = [dataset.labels[i] for i in val]
    expected, got = fp32.decode_pixels(pixels).words, int8.decode_pixels(pixels).words
    agree = np.mean([a == b for a, b in zip(expected, got, strict=True)])
    right = {name: np.mean([w == t for w, t in zip(words, truth, strict=True)])
             for name, words in (("fp32", expected), ("int8", got))}  # fmt: skip
    # This small model's margins are thin (its fp32 reads about 88 % here), so a few words flip either way.
    assert agree >= 0.9, agree
    assert right["fp32"] > 0.75 and right["int8"] >= right["fp32"] - 0.03, right


def test_calibration_takes_training_images_spread_over_the_split(easy_dataset: Path) -> None:
    size = ImageSize(32, 64)
    dataset = CaptchaDataset.open(easy_dataset)
    train = dataset.split("train").indices
    pixels = calibration_pixels(easy_dataset, size, 3)
    picked = (train[0], train[round((len(train) - 1) / 2)], train[-1])
    expected = np.stack([to_model_input(load_image(dataset.image_path(i)), size) for i in picked])
    assert pixels.dtype == np.uint8 and pixels.shape == (3, 32, 64, 3)
    np.testing.assert_array_equal(pixels, expected)
    with pytest.raises(ValueError, match="at least one image"):
        calibration_pixels(easy_dataset, size, 0)


def test_int8_needs_an_onnx_target(trained_sat: Path, easy_dataset: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    argv = ["captcha", "export", str(trained_sat), "--out", str(tmp_path / "m.safetensors"), "--int8",
            str(easy_dataset)]  # fmt: skip
    assert main(argv) != 0
    assert "give --onnx" in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()


def test_the_service_serves_the_int8_export_and_says_so(int8_onnx: Path, easy_dataset: Path) -> None:
    from imcaption.serve.models import load_served_model

    served = load_served_model(int8_onnx)
    assert served.info["backend"] == "onnxruntime (int8)"
    reader = Recognizer.load(int8_onnx)
    dataset = CaptchaDataset.open(easy_dataset)
    pixels = reader.inputs([dataset.image_path(i) for i in list(dataset.split("val").indices)[:16]])
    assert [result["word"] for result in served.run(pixels)] == reader.decode_pixels(pixels).words


def test_a_quantization_killed_while_writing_leaves_the_old_file_whole(
    trained_sat: Path, easy_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imcaption.deploy import quantize
    from imcaption.deploy.onnx_export import export_onnx
    from imcaption.deploy.quantize import quantize_export

    fp32 = export_onnx(trained_sat, tmp_path / "fp32.onnx")
    out = tmp_path / "int8.onnx"
    out.write_bytes(b"the previous export")

    def interrupted_write(model: onnx.ModelProto, path: Path) -> None:
        path.write_bytes(model.SerializeToString()[:100])  # part of the graph, then the kill
        raise KeyboardInterrupt

    monkeypatch.setattr(quantize, "write_model", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        quantize_export(fp32, out, easy_dataset, count=8)
    assert out.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fp32.onnx", "int8.onnx"]  # no temporary file left
    monkeypatch.undo()
    quantize_export(fp32, out, easy_dataset, count=8)
    assert OnnxRecognizer.load(out).precision == "int8"  # graph and description published together
