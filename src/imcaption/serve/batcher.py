"""Micro-batching: concurrent requests wait a few milliseconds to share one model call.

Requests put their images on an asyncio queue; one worker takes the first waiting item, gathers more until
`window` seconds after its arrival or `max_batch` images, runs the model once in its own thread (so the event
loop keeps accepting connections), and hands each request its slice of the result."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class _Pending:
    pixels: np.ndarray  # (n, H, W, 3) uint8
    done: asyncio.Future
    arrived: float  # time.monotonic() when it was queued


class MicroBatcher:
    """`await batcher.run(pixels)` -> what `model(batch)` returns for those rows; `model` maps a (B, H, W, 3)
    batch to a list of B results."""

    def __init__(self, model: Callable[[np.ndarray], list[Any]], window: float, max_batch: int) -> None:
        self.model, self.window, self.max_batch = model, window, max_batch
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self.worker: asyncio.Task | None = None
        self.held: _Pending | None = None  # taken from the queue but too big for the batch being gathered
        self.batches = 0
        self.images = 0

    def start(self) -> None:
        self.worker = asyncio.get_running_loop().create_task(self._serve())

    async def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            await asyncio.gather(self.worker, return_exceptions=True)
        self.executor.shutdown(wait=True)

    async def run(self, pixels: np.ndarray) -> list[Any]:
        done = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(pixels, done, time.monotonic()))
        return await done

    async def _gather(self) -> list[_Pending]:
        """The next model call's requests: at least one, more until the window closes, never more than
        max_batch images unless a single request brings more."""
        first, self.held = self.held or await self.queue.get(), None
        batch, count = [first], len(first.pixels)
        # The window runs from the first request's arrival: under load it has waited through the previous model
        # call already, so the batch takes what is queued and goes, and the model never idles for the window.
        deadline = first.arrived + self.window
        while count < self.max_batch:
            left = deadline - time.monotonic()
            try:
                item = self.queue.get_nowait() if left <= 0 else await asyncio.wait_for(self.queue.get(), left)
            except (asyncio.QueueEmpty, TimeoutError):
                break
            if count + len(item.pixels) > self.max_batch:
                self.held = item  # it starts the next batch
                break
            batch.append(item)
            count += len(item.pixels)
        return batch

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            try:
                pixels = np.concatenate([item.pixels for item in batch])
                results = await loop.run_in_executor(self.executor, self.model, pixels)
            except Exception as err:  # a model failure answers these requests, the worker lives on
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(err)
                continue
            self.batches, self.images = self.batches + 1, self.images + len(pixels)
            start = 0
            for item in batch:
                if not item.done.done():  # a client that went away leaves a cancelled future
                    item.done.set_result(results[start : start + len(item.pixels)])
                start += len(item.pixels)
