import copy

import pytest
import torch

from imcaption.models import EncoderConfig, RecognizerConfig, build_recognizer
from imcaption.models.encoder import CentredPad, ConvEncoder, FusedConvReLU, RowPairMax
from imcaption.models.sat import masked_cross_entropy
from imcaption.text.char_tokenizer import PAD, CharTokenizer


def _sat() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_recognizer(RecognizerConfig("sat", EncoderConfig(32, 64))).eval()


def test_shapes() -> None:
    images = torch.rand(2, 3, 32, 64) * 255
    targets = CharTokenizer().batch_targets(["cat", "horse"])
    assert _sat()(images, targets).shape == (2, 6, 29)
    ctc = build_recognizer(RecognizerConfig("ctc", EncoderConfig(32, 64))).eval()
    assert ctc(images).shape == (2, 8, 29)


def test_teacher_forcing_feeds_the_previous_target() -> None:
    """Changing target t changes the logits from step t+1 on, never before."""
    model = _sat()
    images = torch.rand(1, 3, 32, 64) * 255
    targets = CharTokenizer().batch_targets(["horse"])
    changed = targets.clone()
    changed[0, 2] = CharTokenizer().encode("z")[0]
    with torch.no_grad():
        a, b = model(images, targets), model(images, changed)
    torch.testing.assert_close(a[:, :3], b[:, :3])
    assert not torch.allclose(a[:, 3], b[:, 3])


def test_masked_loss_ignores_padding_only() -> None:
    targets = CharTokenizer().batch_targets(["cat", "horse"])
    logits = torch.randn(2, 6, 29)
    base = masked_cross_entropy(logits, targets)
    at_pad = logits.clone()
    at_pad[targets == PAD] += torch.randn_like(at_pad[targets == PAD]) * 10
    torch.testing.assert_close(masked_cross_entropy(at_pad, targets), base)
    at_letter = logits.clone()
    at_letter[0, 1] += torch.randn(29) * 10
    assert not torch.allclose(masked_cross_entropy(at_letter, targets), base)
    # The mean runs over the 3 + 1 and 5 + 1 real tokens.
    per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    torch.testing.assert_close(base, per_token[targets != PAD].mean())


def test_fused_batch_norm_gives_the_same_features() -> None:
    torch.manual_seed(0)
    encoder = build_recognizer(RecognizerConfig("sat", EncoderConfig(32, 64))).encoder
    for module in encoder.modules():  # non-trivial running statistics, as after training
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
    # Random pixels, and a white page: every border cell of the first layer reads the padding.
    images = torch.cat([torch.rand(4, 3, 32, 64) * 255, torch.full((1, 3, 32, 64), 255.0)])
    expected = encoder.eval()(images)
    fused = encoder.fuse_batch_norm()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    # The input normalization went into the first convolution, which reads the pixels minus the mean.
    assert not fused.normalizes_input and isinstance(fused.layers[0][0][0], CentredPad)
    assert torch.allclose(fused(images), expected, atol=1e-4)


def _trained_looking_encoder() -> ConvEncoder:
    torch.manual_seed(0)
    encoder = build_recognizer(RecognizerConfig("sat", EncoderConfig(32, 64))).encoder
    for module in encoder.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return encoder.eval()


def test_centred_pad_and_row_pair_max_match_the_operators_they_replace() -> None:
    pixels = torch.randint(0, 256, (3, 8, 10, 3), dtype=torch.uint8).permute(0, 3, 1, 2)  # as the reader passes them
    mean = torch.tensor([200.0, 204.0, 123.5])
    expected = torch.nn.functional.pad(pixels.float() - mean.view(1, 3, 1, 1), (1, 1, 1, 1))
    padded = CentredPad(1, mean)(pixels)
    assert torch.equal(padded, expected)
    assert padded.is_contiguous(memory_format=torch.channels_last)  # the layout the convolution reads
    assert torch.equal(CentredPad(1, mean)(pixels.float()), expected)
    # In bf16 the pixels are copied exactly and their difference rounded once, as rounding the fp32 result does.
    assert torch.equal(CentredPad(1, mean, torch.bfloat16)(pixels), expected.to(torch.bfloat16))
    grid = torch.randn(2, 4, 6, 5)
    assert torch.equal(RowPairMax()(grid), torch.nn.MaxPool2d((2, 1))(grid))


def test_reading_form_gives_the_same_features_in_fp32_and_close_ones_in_bf16() -> None:
    encoder = _trained_looking_encoder()
    images = torch.cat([torch.randint(0, 256, (4, 3, 32, 64)).float(), torch.full((1, 3, 32, 64), 255.0)])
    expected = encoder(images)
    fp32 = copy.deepcopy(encoder).prepare_for_reading("fp32")
    assert isinstance(fp32.layers[-1], RowPairMax)
    assert torch.allclose(fp32(images), expected, atol=1e-4)
    if torch.backends.mkldnn.is_available():  # each convolution and its ReLU as one call
        assert sum(isinstance(m, FusedConvReLU) for m in fp32.modules()) == 5
    bf16 = copy.deepcopy(encoder).prepare_for_reading("bf16")
    convolutions = [m for m in bf16.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convolutions) == 5 and all(conv.weight.dtype == torch.bfloat16 for conv in convolutions)
    features = bf16(images.to(torch.uint8))  # as the reader passes pixels
    assert features.dtype == torch.float32
    error = (features - expected).abs().max() / expected.abs().max()
    assert 0 < error < 0.05  # rounded (so bf16 did run), not wrong


def test_cells_are_the_grid_with_its_position_code_row_by_row() -> None:
    encoder = _trained_looking_encoder()
    torch.nn.init.normal_(encoder.position)  # a position code that differs from cell to cell
    images = torch.randint(0, 256, (2, 3, 32, 64)).float()
    grid = encoder(images)  # (B, C, rows, columns)
    cells = encoder.cells(images)
    assert cells.shape == (2, 2 * 8, grid.shape[1])
    torch.testing.assert_close(cells[:, 1 * 8 + 5], grid[:, :, 1, 5])  # row 1, column 5
    torch.testing.assert_close(cells, grid.flatten(2).transpose(1, 2))


def test_square_cells_halve_the_columns_and_match_the_grid():
    from imcaption.models.encoder import ConvEncoder

    words = ConvEncoder(EncoderConfig(32, 64)).eval()
    scenes = ConvEncoder(EncoderConfig(64, 64, column_stride=16)).eval()
    assert words(torch.zeros(1, 3, 32, 64)).shape[-2:] == (2, 8) == words.config.grid
    assert scenes(torch.zeros(1, 3, 64, 64)).shape[-2:] == (4, 4) == scenes.config.grid
    with pytest.raises(ValueError, match="column_stride"):
        ConvEncoder(EncoderConfig(64, 64, column_stride=4))


def test_parallel_decoder_reads_every_position_at_once() -> None:
    """par: logits for all six positions from one pass; a position's logits never depend on the token read before
    it (what makes its beam search over a lexicon exact), and its attention rows are distributions over the grid."""
    torch.manual_seed(0)
    model = build_recognizer(RecognizerConfig("par", EncoderConfig(32, 64))).eval()
    images = torch.rand(2, 3, 32, 64) * 255
    logits, attention = model(images)
    assert logits.shape == (2, 6, 29) and attention.shape == (2, 6, 2 * 8)
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 6))
    state = model.start(images)
    first, state, _ = model.step(torch.tensor([5, 5]), state)
    second_after_5, _, _ = model.step(torch.tensor([5, 5]), state)
    second_after_9, _, _ = model.step(torch.tensor([9, 9]), state)
    torch.testing.assert_close(first, logits[:, 0])
    torch.testing.assert_close(second_after_5, second_after_9)
    torch.testing.assert_close(second_after_5, logits[:, 1])
    searched = model.decode(images)
    assert searched.attention.shape[0] == 2 and searched.attention.shape[2:] == (2, 8)


def test_crnn_peer_reads_gray_64_pixel_high_images() -> None:
    torch.manual_seed(0)
    model = build_recognizer(RecognizerConfig("crnn", EncoderConfig(64, 128))).eval()
    images = torch.rand(2, 3, 64, 128) * 255
    log_probs = model(images)
    assert log_probs.shape == (2, 16, 29)  # 16 columns for CTC, as the ctc model at 64x128
    # Gray input: the colors of the channels, permuted, change nothing.
    torch.testing.assert_close(model(images[:, [2, 0, 1]]), log_probs, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="64-pixel-high"):
        build_recognizer(RecognizerConfig("crnn", EncoderConfig(32, 64)))
    for module in model.modules():  # non-trivial running statistics, as after training
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    expected = model(images)
    model.encoder.fuse_batch_norm()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    torch.testing.assert_close(model(images), expected, atol=1e-4, rtol=1e-4)
