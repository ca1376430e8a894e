"""Data-parallel training under torchrun: which process this is, and the few collective steps the loop needs.

`torchrun --nproc-per-node N -m imcaption captcha train ...` starts N copies of the command with RANK,
WORLD_SIZE and LOCAL_RANK set; a plain run is a world of one, where every method here is a no-op. The global
batch (`--batch-size`) and the learning rate mean the same at any world size: each rank reads its own
contiguous share of a step's global batch from the shared memory-mapped cache, DistributedDataParallel averages
the gradients, and every rank takes the same optimizer step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

# A rank that waits longer than this for the others gives up with an error instead of hanging for ever.
COLLECTIVE_TIMEOUT = timedelta(minutes=10)


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, metrics and the progress bar."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard(self, count: int) -> slice:
        """This rank's contiguous share of `count` rows; the first `count % size` ranks take one more."""
        base, extra = divmod(count, self.size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))

    def gather(self, items: list[Any]) -> list[Any]:
        """Every rank's list, concatenated in rank order, on every rank."""
        if not self.distributed:
            return items
        gathered: list[list[Any] | None] = [None] * self.size
        dist.all_gather_object(gathered, items)
        return [item for part in gathered for item in (part or [])]

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Each value averaged over the ranks (every rank must pass the same names, in the same order)."""
        if not self.distributed or not values:
            return values
        summed = torch.tensor(list(values.values()), dtype=torch.float64)
        dist.all_reduce(summed)
        return {name: value / self.size for name, value in zip(values, summed.tolist(), strict=True)}

    def agree(self, flags: tuple[bool, ...], main_value: float = 0.0) -> tuple[tuple[bool, ...], float]:
        """Each flag true on every rank if it is true on any, and rank 0's `main_value` (>= 0) on every rank, in
        one all-reduce: the decisions that must be the same everywhere (stop, finished, validate now, how much
        of a time budget is spent) although each rank has its own clock and signals."""
        if not self.distributed:
            return flags, main_value
        values = torch.tensor([float(flag) for flag in flags] + [main_value if self.is_main else -1.0])
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        *agreed, value = values.tolist()
        return tuple(v > 0.5 for v in agreed), value

    def same_everywhere(self, value: int) -> bool:
        """Whether every rank holds the same `value`."""
        if not self.distributed:
            return True
        extremes = torch.tensor([value, -value], dtype=torch.float64)
        dist.all_reduce(extremes, op=dist.ReduceOp.MAX)
        return extremes[0].item() == -extremes[1].item()

    def share_buffers(self, model: nn.Module) -> None:
        """Rank 0's buffers (BatchNorm running statistics) on every rank: each rank's last training forward
        updated its own, and validation shards must all use the ones rank 0 saves."""
        if self.distributed:
            for buffer in model.buffers():
                dist.broadcast(buffer, 0)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


# A plain run: one process, nothing to share.
SINGLE = World()


def world_from_env() -> World:
    """The world torchrun describes in the environment, or a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    return World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))


def join(world: World, device: str) -> None:
    """Join the process group: gloo for CPU ranks, nccl for GPUs (each rank on cuda:LOCAL_RANK)."""
    if not world.distributed or dist.is_initialized():
        return
    if device.startswith("cuda"):
        if device not in ("cuda", f"cuda:{world.local_rank}"):
            raise ValueError(f"under torchrun, pass --device cuda (each rank takes cuda:LOCAL_RANK), not {device}")
        torch.cuda.set_device(world.local_rank)
    # The loop's small agreements are CPU tensors: gloo carries them, nccl the gradients on GPUs.
    backend = "cpu:gloo,cuda:nccl" if device.startswith("cuda") else "gloo"
    dist.init_process_group(backend, rank=world.rank, world_size=world.size, timeout=COLLECTIVE_TIMEOUT)


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class TaskLoss(nn.Module):
    """The task's loss as a module's forward, so that DistributedDataParallel, which hooks `forward`, sees the
    whole training computation whatever method the model computes it with."""

    def __init__(self, model: nn.Module, loss: Any) -> None:
        super().__init__()
        self.model = model
        self._loss = loss

    def forward(self, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        return self._loss(batch)


def data_parallel(model: nn.Module, loss: Any, world: World) -> nn.Module:
    """`loss(batch)` as a module: plain in a world of one, DistributedDataParallel (gradients averaged over the
    ranks; rank 0's BatchNorm running statistics broadcast at each step) in a larger one."""
    module = TaskLoss(model, loss)
    if not world.distributed:
        return module
    device_ids = [world.local_rank] if next(model.parameters()).is_cuda else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)
