"""What a recognizer is made of, as plain data: the model kind, its encoder's shape and its sizes.

Kept free of torch: an exported model's description (ONNX metadata) is read into these by the ONNX Runtime reader,
which must not need torch (`pip install imcaption` without the 'train' extra reads .onnx files)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

RECOGNIZERS = ("sat", "par", "ctc", "crnn")


@dataclass(frozen=True)
class EncoderConfig:
    height: int = 64
    width: int = 128
    channels: tuple[int, int, int, int] = (16, 32, 64, 128)
    # 8 keeps twice as many columns as rows, for words read left to right; 16 gives square cells (scenes).
    column_stride: int = 8

    @property
    def grid(self) -> tuple[int, int]:
        return self.height // 16, self.width // self.column_stride


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
