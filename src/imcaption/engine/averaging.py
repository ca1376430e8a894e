"""An exponential moving average of the weights (and BatchNorm statistics), validated and saved in place of the
last step's weights: the trick of the CIFAR-10 speed runs, where the average of the last few hundred steps
reads better than any one of them while the learning rate is still high."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def warmed_up_ema(decay: float) -> Callable[[list[torch.Tensor], list[torch.Tensor], torch.Tensor], None]:
    """AveragedModel's multi-tensor update with the decay ramped up as min(decay, (1 + n) / (10 + n)) after n
    updates: a fixed 0.999 would drag the random initial weights along for thousands of steps. Integer buffers
    (BatchNorm's batch count) take the current value."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], updates: torch.Tensor) -> None:
        n = float(updates)
        weight = 1.0 - min(decay, (1.0 + n) / (10.0 + n))
        if averaged[0].is_floating_point():
            torch._foreach_lerp_(averaged, current, weight)
        else:
            torch._foreach_copy_(averaged, current)

    return update


class WeightAverage:
    """The averaged copy of `model`, updated after each optimizer step."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"--ema must be between 0 and 1 (e.g. 0.999), or 0 for none; got {decay}")
        self.averaged = AveragedModel(model, multi_avg_fn=warmed_up_ema(decay), use_buffers=True)

    def update(self, model: nn.Module) -> None:
        self.averaged.update_parameters(model)

    def weights(self) -> dict[str, torch.Tensor]:
        return self.averaged.module.state_dict()

    @property
    def updates(self) -> int:
        return int(self.averaged.n_averaged)

    def restore(self, weights: dict[str, Any], updates: int) -> None:
        self.averaged.module.load_state_dict(weights)
        self.averaged.n_averaged.fill_(updates)

    @contextmanager
    def swapped_into(self, model: nn.Module) -> Iterator[None]:
        """`model` holds the averaged weights inside the block, its own again after it."""
        trained = {name: value.clone() for name, value in model.state_dict().items()}
        model.load_state_dict(self.weights())
        try:
            yield
        finally:
            model.load_state_dict(trained)
