"""How the service runs: the model, its backend, the limits and the worker processes. Light to import: the
supervising process of a multi-worker service never loads the model."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from imcaption.serve.limits import ServiceLimits

# "auto" serves a checkpoint with PyTorch where its reading runs the encoder in bf16 (the processor has it in
# hardware) and through ONNX Runtime's fp32 elsewhere, where ONNX Runtime reads faster than PyTorch's fp32
# (bench/results/serve*.json and onnx_speed_*.json).
RECOGNIZER_BACKENDS = ("auto", "pytorch", "onnxruntime")


def check_backend(backend: str) -> None:
    if backend not in RECOGNIZER_BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(RECOGNIZER_BACKENDS)}; got {backend!r}")


@dataclass(frozen=True)
class ServeSettings:
    model: str
    backend: str = "auto"
    limits: ServiceLimits = field(default_factory=ServiceLimits)
    workers: int = 1

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        check_backend(self.backend)

    @property
    def model_threads(self) -> int:
        """Each worker's share of the cores for its model calls."""
        return max(1, (os.cpu_count() or 1) // self.workers)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        values = json.loads(text)
        return cls(**{**values, "limits": ServiceLimits(**values["limits"])})


def default_workers() -> int:
    """One worker per core, at most 4: each holds its own model and PyTorch (a few hundred MB)."""
    return max(1, min(4, os.cpu_count() or 1))
