"""Choosing the torch device a model runs on, for training and reading alike.

It lives apart from the training loop (loop.py) so that loading a model to read with does not import the loop,
its checkpoint writing, its progress bars and its plots."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """The torch device called `name` ("cpu", "cuda", "cuda:1"); ValueError for CUDA where torch has none."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: this torch has no CUDA device available; use --device cpu")
    return device
