"""Dynamic batching: requests for one model merged along the batch axis, run once, split back.

Each model version has one :class:`Batcher` with one worker per instance. A worker takes the
oldest waiting request and every queued request it can join (same input shapes past the batch
axis) up to ``max_batch_size`` rows; with ``delay_s`` > 0 it waits that long for more while the
batch is short. With the default delay of 0 nothing waits: a request that finds the model idle
runs at once, and requests that arrive while it is busy are merged for the next run — batching
costs a lone client nothing and gives a crowd the throughput of large batches.

The run happens in a thread (runtimes release the GIL), so the event loop keeps accepting and
checking requests. The queue is bounded: a full queue refuses with 503 at once rather than letting
latency grow without limit. Requests whose client gave up (timeout, disconnect) are skipped.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ServeError

Runner = Callable[[dict], dict]


@dataclass
class _Pending:
    feeds: dict[str, np.ndarray]
    rows: int
    key: tuple            # what must match to share a run: input shapes past the batch axis
    future: asyncio.Future
    enqueued_ns: int


class Batcher:
    """The queue and workers of one model version."""

    def __init__(self, label: str, runners: list[Runner], *, max_batch_size: int, delay_s: float,
                 max_queue: int, stats=None, closers=()):
        self.label = label
        self.max_batch_size = max_batch_size
        self.delay_s = delay_s
        self.max_queue = max_queue
        self.stats = stats
        self._runners = runners
        self._closers = list(closers)
        self._queue: deque[_Pending] = deque()
        self._arrived: asyncio.Event | None = None
        self._workers: list[asyncio.Task] = []
        self._executor = ThreadPoolExecutor(len(runners), thread_name_prefix=f"model-{label}")
        self._closing = False
        self.in_flight = 0

    def start(self) -> None:
        self._arrived = asyncio.Event()
        self._workers = [asyncio.create_task(self._work(runner), name=f"batcher {self.label}")
                         for runner in self._runners]

    @property
    def depth(self) -> int:
        return len(self._queue)

    async def submit(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Queue one request's feeds (already checked) and wait for its outputs."""
        if self._closing:
            raise ServeError(f"model {self.label!r} is shutting down; send the request elsewhere", status=503)
        if len(self._queue) >= self.max_queue:
            raise ServeError(f"model {self.label!r} has {len(self._queue)} requests queued (the limit); "
                             "retry later or raise --max-queue-size", status=503)
        first = next(iter(feeds.values()))
        batched = self.max_batch_size > 0
        rows = first.shape[0] if batched and first.ndim else 1
        key = tuple((name, value.shape[1:] if batched else value.shape, value.dtype.str)
                    for name, value in feeds.items())
        future = asyncio.get_running_loop().create_future()
        if self.stats is not None:
            self.stats.queued(len(self._queue))
        self._queue.append(_Pending(feeds, rows, key, future, time.perf_counter_ns()))
        self._arrived.set()
        return await future

    async def _work(self, runner: Runner) -> None:
        while True:
            while not self._queue:
                if self._closing:
                    return
                self._arrived.clear()
                await self._arrived.wait()
            batch = self._take()
            if batch and self.delay_s > 0 and sum(p.rows for p in batch) < self.max_batch_size:
                batch = await self._wait_for_more(batch)
            if batch:
                await self._run(runner, batch)

    def _take(self, batch: list[_Pending] | None = None) -> list[_Pending]:
        """The oldest live request and the queued ones that can join it, up to the row limit."""
        batch = batch or []
        rows = sum(p.rows for p in batch)
        kept: deque[_Pending] = deque()
        while self._queue:
            pending = self._queue.popleft()
            if pending.future.done():  # the client gave up: drop it
                continue
            if not batch:
                batch, rows = [pending], pending.rows
                if self.max_batch_size == 0:
                    break
            elif pending.key == batch[0].key and rows + pending.rows <= self.max_batch_size:
                batch.append(pending)
                rows += pending.rows
            else:
                kept.append(pending)
            if self.max_batch_size and rows >= self.max_batch_size:
                break
        kept.extend(self._queue)
        self._queue = kept
        return batch

    async def _wait_for_more(self, batch: list[_Pending]) -> list[_Pending]:
        deadline = time.perf_counter() + self.delay_s
        while sum(p.rows for p in batch) < self.max_batch_size:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass
            batch = self._take(batch)
        return [p for p in batch if not p.future.done()]

    async def _run(self, runner: Runner, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        feeds = batch[0].feeds if len(batch) == 1 else {
            name: np.concatenate([p.feeds[name] for p in batch]) for name in batch[0].feeds}
        started = time.perf_counter_ns()
        self.in_flight += 1
        try:
            outputs = await loop.run_in_executor(self._executor, runner, feeds)
        except Exception as exc:  # the model failed on this batch: every request in it gets the error
            self._fail(batch, exc)
            return
        finally:
            self.in_flight -= 1
        compute_ns = time.perf_counter_ns() - started
        rows = sum(p.rows for p in batch)
        if self.stats is not None:
            self.stats.executed(rows, len(batch), sum(started - p.enqueued_ns for p in batch), compute_ns)
        if len(batch) == 1:
            _settle(batch[0].future, outputs)
            return
        if any(value.ndim == 0 or value.shape[0] != rows for value in outputs.values()):
            # The outputs do not follow the batch axis (dim 0 is dynamic but means something else):
            # this model cannot be batched; run these requests one by one from now on.
            self.max_batch_size = 0
            for pending in batch:
                await self._run(runner, [pending])
            return
        offset = 0
        for pending in batch:
            _settle(pending.future, {name: value[offset:offset + pending.rows] for name, value in outputs.items()})
            offset += pending.rows

    def _fail(self, batch: list[_Pending], exc: Exception) -> None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(exc)

    async def close(self) -> None:
        """Refuse new requests, finish the queued ones, then release the runtimes."""
        self._closing = True
        if self._arrived is not None:
            self._arrived.set()
        if self._workers:
            await asyncio.gather(*self._workers, return_exceptions=True)
        self._executor.shutdown(wait=True)
        for close in self._closers:
            try:
                close()
            except Exception:  # a runtime that fails to close must not block the others
                pass


def _settle(future: asyncio.Future, outputs) -> None:
    if not future.done():
        future.set_result(outputs)
