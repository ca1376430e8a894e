"""Micro-batching: concurrent requests wait a few milliseconds to share one model call.

Requests queue their images; one worker takes the first waiting request, gathers more until `window` seconds
after its arrival or `max_batch` images, runs the model once in its own thread (so the event loop keeps accepting
connections), and hands each request its slice of the result.

Past capacity the queue would grow without bound and every answer come later than the last, so the queue holds
at most `max_queue` images: a request that would go past it is refused at once (`QueueFull`), and one still
waiting at its deadline is taken out of the queue and refused (`DeadlineExceeded`) rather than computed for a
caller who has stopped waiting."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class Overloaded(Exception):
    """The service cannot take this request now; `retry_after` is whole seconds worth waiting first."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QueueFull(Overloaded):
    pass


class DeadlineExceeded(Overloaded):
    pass


class ModelError(Exception):
    """The model call failed; its traceback is in the server's log, not in the answer."""


@dataclass(eq=False)  # compared by identity: deque.remove must find this very request
class _Pending:
    pixels: np.ndarray  # (n, H, W, 3) uint8
    done: asyncio.Future
    arrived: float  # time.monotonic() when it was queued
    deadline: float  # time.monotonic() past which it is no longer worth computing
    started: bool = field(default=False)  # taken into a model call


class MicroBatcher:
    """`await batcher.run(pixels, deadline)` -> what `model(batch)` returns for those rows; `model` maps a
    (B, H, W, 3) batch to a list of B results."""

    def __init__(self, model: Callable[[np.ndarray], list[Any]], window: float, max_batch: int,
                 max_queue: int = 256) -> None:  # fmt: skip
        self.model, self.window, self.max_batch, self.max_queue = model, window, max_batch, max_queue
        self.waiting: deque[_Pending] = deque()
        self.waiting_images = 0
        self.arrival = asyncio.Event()  # set whenever a request joins the queue
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self.worker: asyncio.Task | None = None
        self.batches = 0
        self.images = 0
        self.refused_full = 0
        self.refused_deadline = 0
        self.seconds_per_image = 0.0  # of recent model calls: how soon a full queue drains

    def start(self) -> None:
        self.worker = asyncio.get_running_loop().create_task(self._serve())

    async def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            await asyncio.gather(self.worker, return_exceptions=True)
        self.executor.shutdown(wait=True)

    def retry_after(self) -> int:
        """Whole seconds for the queue as it stands to drain, at least 1."""
        return max(1, math.ceil(self.waiting_images * self.seconds_per_image))

    def check_room(self, images: int = 1) -> None:
        """QueueFull unless the queue has room for `images` more."""
        if self.waiting_images + images > self.max_queue:
            self.refused_full += 1
            raise QueueFull(f"the service is at capacity: {self.waiting_images} images wait for the model, the "
                            f"limit is {self.max_queue}; try again shortly", self.retry_after())  # fmt: skip

    async def run(self, pixels: np.ndarray, deadline: float = math.inf) -> list[Any]:
        """The model's results for `pixels`; QueueFull at once if the queue has no room for them, DeadlineExceeded
        if their model call has not begun by `deadline` (time.monotonic()). A call that has begun is waited for:
        it is at most `max_batch` images, and its result is paid for already."""
        self.check_room(len(pixels))
        now = time.monotonic()
        item = _Pending(pixels, asyncio.get_running_loop().create_future(), now, deadline)
        self.waiting.append(item)
        self.waiting_images += len(pixels)
        self.arrival.set()
        try:
            # asyncio.wait, not wait_for: a timeout must leave the future alone, a model call may be filling it.
            await asyncio.wait([item.done], timeout=None if math.isinf(deadline) else max(0.0, deadline - now))
            if not item.done.done() and not item.started:
                self._withdraw(item)
                self.refused_deadline += 1
                waited = f"{1000 * (time.monotonic() - item.arrived):.0f} ms"
                raise DeadlineExceeded(f"the service is overloaded: the request waited {waited} without reaching "
                                       "the model; try again shortly", self.retry_after())  # fmt: skip
            return await item.done
        except asyncio.CancelledError:  # the request's task was cancelled: nobody wants the answer
            self._withdraw(item)
            item.done.cancel()
            raise

    def _withdraw(self, item: _Pending) -> None:
        """Take a request that has not reached the model out of the queue, so that no model call computes it."""
        if not item.started and item in self.waiting:
            self.waiting.remove(item)  # at most max_queue items: cheap
            self.waiting_images -= len(item.pixels)

    async def _next_arrival(self, timeout: float | None) -> bool:
        """Wait for a request to join the queue; False if `timeout` seconds pass first."""
        self.arrival.clear()
        try:
            await asyncio.wait_for(self.arrival.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _gather(self) -> list[_Pending]:
        """The next model call's requests, in arrival order: more until the first's window closes, never more than
        max_batch images unless a single request brings more; requests past their deadline are left out. Empty if
        every waiting request was withdrawn meanwhile."""
        while not self.waiting:
            await self._next_arrival(None)
        # The window runs from the first request's arrival: under load it has waited through the previous model
        # call already, so the batch takes what is queued and goes, and the model never idles for the window.
        closes = self.waiting[0].arrived + self.window
        while self.waiting and self.waiting_images < self.max_batch and (left := closes - time.monotonic()) > 0:
            if not await self._next_arrival(left):
                break
        batch, count, now = [], 0, time.monotonic()
        while self.waiting and (not batch or count + len(self.waiting[0].pixels) <= self.max_batch):
            item = self.waiting.popleft()
            self.waiting_images -= len(item.pixels)
            if item.done.done() or item.deadline <= now:
                continue  # its caller left, or is about to be told it waited too long: not worth computing
            item.started = True
            batch.append(item)
            count += len(item.pixels)
        return batch

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            if not batch:
                continue
            pixels = np.concatenate([item.pixels for item in batch])
            start = time.monotonic()
            try:
                results = await loop.run_in_executor(self.executor, self.model, pixels)
            except Exception:  # a model failure answers these requests, the worker lives on
                log.exception("the model failed on a batch of %d images", len(pixels))
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(ModelError("the model failed on this request"))
                continue
            # A moving average: a full queue's wait follows the model's speed as the load changes.
            per_image = (time.monotonic() - start) / len(pixels)
            self.seconds_per_image = per_image if not self.batches else 0.8 * self.seconds_per_image + 0.2 * per_image
            self.batches, self.images = self.batches + 1, self.images + len(pixels)
            row = 0
            for item in batch:
                if not item.done.done():  # a client that went away leaves a cancelled future
                    item.done.set_result(results[row : row + len(item.pixels)])
                row += len(item.pixels)
