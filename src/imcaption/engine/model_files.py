"""Telling model files apart, and the error every model loader raises: no torch here, so that the ONNX Runtime
readers (and `imcaption.api`, which picks a backend by the file) work where only the core is installed.
checkpoint.py, which reads and writes the PyTorch files, re-exports both names."""

from __future__ import annotations

from pathlib import Path


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, unsafe or made by an incompatible version."""


def is_onnx_file(path: str | Path) -> bool:
    """By name (.onnx) or by content: an ONNX model is a protobuf whose first field is ir_version (tag byte 0x08),
    where a checkpoint is a zip archive ("PK") and a safetensors file a length followed by a JSON header ("{")."""
    path = Path(path)
    if path.suffix == ".onnx":
        return True
    try:
        with path.open("rb") as handle:
            head = handle.read(9)
    except OSError:
        return False
    return head[:1] == b"\x08" and head[8:9] != b"{" and head[:2] != b"PK"
