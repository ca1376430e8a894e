"""What a captioner model is, for training, reading and export alike: its spec, how it is built, the feature
grid its attention spreads over, and its caption search.

Kept out of task.py (the training task) so that loading a captioner to caption with does not import training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from imcaption.engine.precision import autocast
from imcaption.engine.search import SearchTokens, search
from imcaption.models.caption_decoders import CaptionerConfig, CaptionModel
from imcaption.models.encoder import ConvEncoder, EncoderConfig
from imcaption.models.mobilenet_v2 import feature_grid_side
from imcaption.text.word_tokenizer import END, PAD, START

CAPTION_TOKENS = SearchTokens(START, END, PAD)
ENCODERS = ("cnn", "mobilenet")


@dataclass(frozen=True)
class CaptionModelSpec:
    """What building and feeding a captioner needs besides its tokenizer (saved in every checkpoint)."""

    decoder: str = "sat"
    encoder: str = "cnn"
    image_size: int = 128
    max_length: int = 24


def caption_grid(encoder: str, side: int) -> tuple[int, int]:
    """Rows and columns of the feature grid a square input of `side` pixels gives."""
    if encoder == "mobilenet":
        return feature_grid_side(side), feature_grid_side(side)
    return EncoderConfig(side, side, column_stride=16).grid


def build_caption_model(spec: CaptionModelSpec, vocab_size: int) -> CaptionModel:
    """The untrained model `spec` describes, for a vocabulary of `vocab_size` tokens."""
    if spec.encoder == "mobilenet":
        cells = feature_grid_side(spec.image_size) ** 2
        return CaptionModel(CaptionerConfig(spec.decoder, 1280, vocab_size, grid_cells=cells))
    if spec.encoder != "cnn":
        raise ValueError(f"unknown encoder {spec.encoder!r}; choose one of {', '.join(ENCODERS)}")
    encoder = ConvEncoder(EncoderConfig(spec.image_size, spec.image_size, column_stride=16))
    return CaptionModel(CaptionerConfig(spec.decoder, encoder.channels, vocab_size), encoder)


def search_captions(
    model: CaptionModel, inputs: torch.Tensor, max_length: int, beam: int = 1, precision: str = "fp32"
) -> tuple[list[list[int]], torch.Tensor | None]:
    """Token ids per image and, for sat under greedy search, the attention (B, T, N) of each step. `precision`
    (resolved: "fp32" or "bf16") is that of the encoder; the decoder's search runs in fp32 either way, as the
    captcha reader's does."""
    with autocast(precision, inputs.device):
        features = model.features(inputs)
    state = model.decoder.start(features.float())
    searched = search(model.decoder, state, inputs.shape[0], CAPTION_TOKENS, max_length, beam)
    return searched.ids, searched.attention
