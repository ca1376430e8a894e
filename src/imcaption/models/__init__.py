"""Networks: pure nn.Modules, no I/O."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from imcaption.models.crnn import CRNNRecognizer
from imcaption.models.ctc import CTCRecognizer
from imcaption.models.encoder import ConvEncoder, EncoderConfig
from imcaption.models.parallel import ParallelRecognizer
from imcaption.models.sat import SATRecognizer

RECOGNIZERS = ("sat", "par", "ctc", "crnn")


@dataclass(frozen=True)
class RecognizerConfig:
    kind: str = "sat"
    encoder: EncoderConfig = EncoderConfig()
    hidden: int = 256
    embed: int = 64
    attention: int = 128
    vocab_size: int = 29
    max_length: int = 5
    layers: int = 2  # par: query blocks
    heads: int = 4  # par: attention heads

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict) -> RecognizerConfig:
        encoder = {**state["encoder"], "channels": tuple(state["encoder"].get("channels", EncoderConfig.channels))}
        return cls(**{**state, "encoder": EncoderConfig(**encoder)})


def build_recognizer(config: RecognizerConfig) -> nn.Module:
    if config.kind not in RECOGNIZERS:
        raise ValueError(f"unknown model {config.kind!r}; choose one of {', '.join(RECOGNIZERS)}")
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
