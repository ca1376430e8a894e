"""Checkpoint files: full training states (resume) and weights-only exports (use), both loaded without pickle.

A training checkpoint is a `torch.save` dict read back with `weights_only=True`, which refuses any object but
tensors, containers and plain values, so a crafted file cannot run code. An export is a safetensors file: the
weights, plus everything needed to use them (model config, tokenizer, input size) as JSON in its metadata.
Both carry `format` (which task made them) and `format_version`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

# Re-exported: both lived here before model_files.py, which holds them without torch.
from imcaption.engine.model_files import CheckpointError as CheckpointError
from imcaption.engine.model_files import is_onnx_file as is_onnx_file
from imcaption.files import write_atomically
from imcaption.version import __version__

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1 (imcaption 0.1) differs only in how training state is laid out


def save_checkpoint(path: str | Path, state: dict[str, Any], kind: str) -> None:
    header = {"format": kind, "format_version": FORMAT_VERSION, "imcaption": __version__}
    write_atomically(path, lambda temp: torch.save({**header, **state}, temp))


def _check_header(path: Path, state: Any, kind: str) -> dict[str, Any]:
    if not isinstance(state, dict) or state.get("format") != kind:
        raise CheckpointError(f"{path} is not an {kind.replace('-', ' ')} checkpoint")
    version = state.get("format_version")
    if version not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path} has checkpoint format {version} (made by imcaption {state.get('imcaption', '?')});"
            f" this imcaption {__version__} reads formats {READABLE_VERSIONS}: retrain, or use the matching version"
        )
    return state


def load_checkpoint(path: str | Path, kind: str) -> dict[str, Any]:
    """A training checkpoint's state, loaded with `weights_only=True` (no code runs while reading it)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a damaged or unsafe file
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"cannot read checkpoint {path} safely: {reason}") from None
    return _check_header(path, state, kind)


def export_model(path: str | Path, weights: dict[str, torch.Tensor], described: dict[str, Any], kind: str) -> None:
    """A weights-only model file: safetensors weights, and `described` (JSON-able) in its metadata."""
    metadata = {
        "format": kind,
        "format_version": str(FORMAT_VERSION),
        "imcaption": __version__,
        "described": json.dumps(described),
    }
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in weights.items()}
    write_atomically(path, lambda temp: save_file(tensors, str(temp), metadata=metadata))


def _is_zip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == b"PK"  # torch.save writes a zip archive; safetensors starts with a length


def _load_export(path: Path, kind: str) -> dict[str, Any]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            weights = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"cannot read model file {path}: {err}") from None
    header = {
        "format": metadata.get("format"),
        "format_version": int(metadata.get("format_version", "0")),
        "imcaption": metadata.get("imcaption"),
    }
    _check_header(path, header, kind)
    try:
        described = json.loads(metadata["described"])
    except (KeyError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: model file without a readable description: {err}") from None
    return {**header, **described, "model": weights}


def load_model_file(path: str | Path, kind: str) -> dict[str, Any]:
    """What using a model needs (weights under "model", plus its description), from a training checkpoint
    or from an export; the two are told apart by their first bytes, not by their names."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if is_onnx_file(path):
        # The PyTorch readers take checkpoints and exports; the backend for a file is chosen in imcaption.api.
        raise CheckpointError(f"{path} is an ONNX model: load it with imcaption.Recognizer.load or Captioner.load")
    return load_checkpoint(path, kind) if _is_zip(path) else _load_export(path, kind)
