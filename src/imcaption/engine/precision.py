"""Mixed precision for training: which number format the forward pass runs in, and its autocast context.

On a CPU with native bfloat16 (AMX or AVX-512 BF16, as on recent Xeons) oneDNN runs bf16 convolutions faster
than fp32 ones (BENCHMARKS.md, recipe probes); without it bf16 is emulated and slower. So "auto" takes bf16 only
where the hardware has it. Weights, gradients and the optimizer stay fp32 (autocast casts per operation), so a
checkpoint does not depend on the precision it was trained in.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: torch.device) -> bool:
    """Whether `device` runs bfloat16 matrix and convolution kernels in hardware."""
    import torch  # here, not at the top: the ONNX Runtime reader checks precision names without torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def check_precision(name: str) -> str:
    """`name` if it is one of PRECISIONS, else ValueError naming them."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    return name


def resolve_precision(name: str, device: torch.device) -> str:
    """`name` ("auto", "fp32" or "bf16") made concrete for `device`: "fp32" or "bf16"."""
    if check_precision(name) == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return name


def autocast(precision: str, device: torch.device) -> AbstractContextManager:
    """The context a forward pass runs in for a resolved `precision`."""
    if precision == "fp32":
        return nullcontext()
    import torch  # as in native_bf16

    return torch.autocast(device.type, dtype=torch.bfloat16)
