"""Checkpoints that carry everything needed to use them: weights, model config, tokenizer, input size."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from imcaption import __version__
from imcaption.data.preprocess import ImageSize
from imcaption.models import RecognizerConfig, build_recognizer
from imcaption.text.char_tokenizer import CharTokenizer

FORMAT = "imcaption-recognizer"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or made by an incompatible version."""


@dataclass
class Recognizer:
    """A loaded checkpoint, ready to read images."""

    model: nn.Module
    config: RecognizerConfig
    tokenizer: CharTokenizer
    size: ImageSize
    state: dict[str, Any]


def save_checkpoint(path: str | Path, state: dict[str, Any], kind: str = FORMAT) -> None:
    """Atomic: a crash while saving leaves the previous file intact."""
    path = Path(path)
    temp = path.with_name(path.name + ".partial")
    torch.save({"format": kind, "format_version": FORMAT_VERSION, "imcaption": __version__, **state}, temp)
    os.replace(temp, path)


def load_checkpoint(path: str | Path, kind: str = FORMAT) -> dict[str, Any]:
    """The saved state, after checking it is a readable `kind` checkpoint of this format version."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many kinds for a damaged file
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from None
    if not isinstance(state, dict) or state.get("format") != kind:
        raise CheckpointError(f"{path} is not an {kind.replace('-', ' ')} checkpoint")
    version = state.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version} (made by imcaption {state.get('imcaption', '?')});"
            f" this imcaption {__version__} reads format {FORMAT_VERSION}: retrain, or use the matching version"
        )
    return state


def load_recognizer(path: str | Path) -> Recognizer:
    state = load_checkpoint(path)
    try:
        config = RecognizerConfig.from_dict(state["model_config"])
        model = build_recognizer(config)
        model.load_state_dict(state["model"])
        tokenizer = CharTokenizer.from_dict(state["tokenizer"])
        size = ImageSize(**state["image_size"])
    except (KeyError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"{path}: checkpoint does not match this model code: {err}") from None
    model.eval()
    model.encoder.fuse_batch_norm()
    return Recognizer(model, config, tokenizer, size, state)
