"""Test-time augmentation (models.views): shifted copies of each image, log-probabilities averaged per step."""

import pytest
import torch

from imcaption.captcha.recognizer import TorchRecognizer
from imcaption.engine.search import search
from imcaption.images import ImageSize
from imcaption.models import EncoderConfig, RecognizerConfig, build_recognizer
from imcaption.models.sat import TOKENS
from imcaption.models.views import AveragedViews, decode_views, shifted, view_offsets
from imcaption.text.char_tokenizer import CharTokenizer


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    config = RecognizerConfig("sat", EncoderConfig(32, 64, (4, 8, 8, 16)), hidden=16, embed=8, attention=8)
    return build_recognizer(config).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (6, 3, 32, 64), generator=generator, dtype=torch.uint8).float()


def test_shifted_moves_the_pixels_and_repeats_the_border() -> None:
    image = torch.arange(2 * 3 * 4, dtype=torch.uint8).view(1, 2, 3, 4)
    right = shifted(image, 0, 2)
    assert right.dtype == torch.uint8
    assert torch.equal(right[..., 2:], image[..., :2])
    assert torch.equal(right[..., 0], image[..., 0]) and torch.equal(right[..., 1], image[..., 0])
    up = shifted(image, -1, 0)
    assert torch.equal(up[..., :2, :], image[..., 1:, :])
    assert torch.equal(up[..., 2, :], image[..., 2, :])


def test_view_offsets_list_the_image_first_and_refuse_other_counts() -> None:
    assert view_offsets(1) == ((0, 0),)
    assert view_offsets(3, shift=2) == ((0, 0), (0, -2), (0, 2))
    assert len(set(view_offsets(5))) == 5
    with pytest.raises(ValueError, match="views must be one of"):
        view_offsets(4)


@pytest.mark.parametrize("beam", [1, 3])
def test_identical_copies_read_as_the_image_alone(model: torch.nn.Module, images: torch.Tensor, beam: int) -> None:
    """Three unshifted copies average to the image's own log-probabilities: the same words under greedy and beam
    search (beam search reorders the (B, V, ...) state, which must move the copies of a hypothesis together)."""
    alone = model.decode(images, beam)
    copies = decode_views(model, images, ((0, 0),) * 3, TOKENS, model.max_length + 1, beam)
    assert copies.ids == alone.ids
    assert copies.confidences == pytest.approx(alone.confidences, rel=1e-4)


def test_each_step_averages_the_copies_log_probabilities(model: torch.nn.Module, images: torch.Tensor) -> None:
    offsets = ((0, 0), (0, 4))
    copies = torch.stack([shifted(images, r, c) for r, c in offsets], dim=1).flatten(0, 1)
    averaged = AveragedViews(model, len(offsets))
    token = torch.full((images.shape[0],), TOKENS.start, dtype=torch.long)
    log_probs, state, weights = averaged.step(token, averaged.start(copies))
    separate = [torch.log_softmax(model.step(token, model.start(shifted(images, r, c)))[0], dim=-1) for r, c in offsets]
    assert torch.allclose(log_probs, (separate[0] + separate[1]) / 2, atol=1e-5)
    assert not torch.allclose(separate[0], separate[1], atol=1e-3)  # the copies really differ
    assert state["hidden"].shape[:2] == (images.shape[0], len(offsets))
    assert weights is not None and weights.shape[0] == images.shape[0]


def test_averaged_greedy_search_returns_one_reading_per_image(model: torch.nn.Module, images: torch.Tensor) -> None:
    averaged = AveragedViews(model, 5)
    copies = torch.stack([shifted(images, r, c) for r, c in view_offsets(5)], dim=1).flatten(0, 1)
    searched = search(averaged, averaged.start(copies), images.shape[0], TOKENS, model.max_length + 1)
    assert len(searched.ids) == images.shape[0]
    assert searched.attention is not None and searched.attention.shape[0] == images.shape[0]


def _reader(kind: str) -> TorchRecognizer:
    torch.manual_seed(0)
    config = RecognizerConfig(kind, EncoderConfig(32, 64, (4, 8, 8, 16)), hidden=16, embed=8, attention=8)
    model = build_recognizer(config).eval()
    return TorchRecognizer(model, config, CharTokenizer(), ImageSize(32, 64), torch.device("cpu"))


def test_the_reader_reads_views_as_decode_views_does(images: torch.Tensor) -> None:
    reader = _reader("sat")
    pixels = images.to(torch.uint8).permute(0, 2, 3, 1).numpy()
    read = reader.decode_pixels(pixels, views=3)
    offsets = view_offsets(3, reader.view_shift)
    searched = decode_views(reader.model, images, offsets, TOKENS, reader.model.max_length + 1)
    assert read.words == [reader.tokenizer.decode(ids) for ids in searched.ids]
    assert read.attention is not None and tuple(read.attention.shape[2:]) == reader.config.encoder.grid


def test_views_are_refused_for_a_ctc_reader(images: torch.Tensor) -> None:
    pixels = images.to(torch.uint8).permute(0, 2, 3, 1).numpy()
    with pytest.raises(ValueError, match="step-by-step decoder"):
        _reader("ctc").decode_pixels(pixels, views=3)


def test_read_passes_views_to_the_reader(images: torch.Tensor) -> None:
    reader = _reader("sat")
    pixels = images.to(torch.uint8).permute(0, 2, 3, 1).numpy()
    read = reader.read(list(pixels), views=5)
    five, one = reader.decode_pixels(pixels, views=5), reader.decode_pixels(pixels)
    assert [r.word for r in read] == five.words
    assert [r.confidence for r in read] == pytest.approx(five.confidences)
    assert [r.confidence for r in read] != pytest.approx(one.confidences)
