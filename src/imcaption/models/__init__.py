"""Networks: pure nn.Modules, no I/O.

This package root imports no torch: the configs are plain data (config.py) that the ONNX Runtime reader needs
without torch, and `build_recognizer` imports the networks when it builds one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imcaption.models.config import RECOGNIZERS, EncoderConfig, RecognizerConfig

if TYPE_CHECKING:
    from torch import nn


def build_recognizer(config: RecognizerConfig) -> nn.Module:
    if config.kind not in RECOGNIZERS:
        raise ValueError(f"unknown model {config.kind!r}; choose one of {', '.join(RECOGNIZERS)}")
    # The networks import torch, so they are imported here, where one is built, and not with the package.
    from imcaption.models.crnn import CRNNRecognizer
    from imcaption.models.ctc import CTCRecognizer
    from imcaption.models.encoder import ConvEncoder
    from imcaption.models.parallel_decoder import ParallelRecognizer
    from imcaption.models.sat import SATRecognizer

    if config.kind == "crnn":  # the peer brings its own CNN
        return CRNNRecognizer(config.encoder.height, config.vocab_size)
    encoder = ConvEncoder(config.encoder)
    if config.kind == "sat":
        return SATRecognizer(
            encoder, config.vocab_size, config.hidden, config.embed, config.attention, config.max_length
        )
    if config.kind == "par":
        return ParallelRecognizer(encoder, config.vocab_size, config.max_length, config.layers, config.heads)
    return CTCRecognizer(encoder, config.vocab_size, config.hidden)


def trained_parameters(model: nn.Module) -> int:
    """The parameters training updates, on the model as built for training: frozen backbones are left out, and
    BatchNorm scales and shifts are counted (inference folds them into the convolutions). The one way every
    benchmark counts."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["RecognizerConfig", "EncoderConfig", "build_recognizer", "trained_parameters", "RECOGNIZERS"]
