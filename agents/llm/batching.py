"""Combine small concurrent requests from threads of one process into one batched call.

A model call on the CPU costs nearly the same for one text as for thirty, so web threads and
workers that each embed one query are better served together. There is no background
thread: the first caller that finds no batch open becomes its leader, waits a few
milliseconds for others to join, runs the batched function once and hands out the results.
Batches run one at a time, in the order they were opened; callers that arrive while one runs
fill the next, so the busier the process, the larger the batches (group commit).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class BatchStats:
    calls: int = 0  # calls of the batched function
    items: int = 0  # items it was given, in all
    largest: int = 0  # the most items in one call


@dataclass
class _Batch(Generic[T, R]):
    seq: int
    items: list[T] = field(default_factory=list)
    sealed: bool = False  # takes no more items
    done: bool = False
    results: list[R] = field(default_factory=list)
    error: BaseException | None = None

    def outcome(self, offset: int, count: int) -> list[R]:
        if self.error is not None:
            raise self.error
        return self.results[offset : offset + count]


class MicroBatcher(Generic[T, R]):
    def __init__(
        self, fn: Callable[[list[T]], list[R]], *, max_batch: int = 64, max_wait_ms: float = 3.0
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.stats = BatchStats()
        self._cond = threading.Condition()
        self._open: _Batch[T, R] | None = None  # the batch taking items, if any
        self._opened = 0  # batches opened so far: the next one's sequence number
        self._turn = 0  # the sequence number of the batch allowed to run next

    def submit(self, items: Sequence[T]) -> list[R]:
        """The results for `items`, in order; blocks until they are computed."""
        items = list(items)
        results: list[R] = []
        for start in range(0, len(items), self.max_batch):
            results += self._submit_chunk(items[start : start + self.max_batch])
        return results

    def _submit_chunk(self, chunk: list[T]) -> list[R]:
        with self._cond:
            batch = self._open
            if batch is not None and len(batch.items) + len(chunk) <= self.max_batch:
                return self._follow(batch, chunk)
            batch = self._start(chunk)
        return self._lead(batch, len(chunk))

    def _follow(self, batch: _Batch[T, R], chunk: list[T]) -> list[R]:
        offset = len(batch.items)
        batch.items += chunk
        if len(batch.items) == self.max_batch:
            self._cond.notify_all()  # the leader need not wait any longer
        while not batch.done:
            self._cond.wait()
        return batch.outcome(offset, len(chunk))

    def _start(self, chunk: list[T]) -> _Batch[T, R]:
        if self._open is not None:
            # It has no room for this chunk: let its leader go as soon as its turn comes.
            self._open.sealed = True
            self._cond.notify_all()
        batch: _Batch[T, R] = _Batch(seq=self._opened, items=list(chunk))
        self._opened += 1
        self._open = batch
        return batch

    def _lead(self, batch: _Batch[T, R], count: int) -> list[R]:
        with self._cond:
            self._wait_for_turn(batch, deadline=time.monotonic() + self.max_wait)
            batch.sealed = True
            if self._open is batch:
                self._open = None
        try:
            self._run(batch)
        finally:
            with self._cond:
                batch.done = True
                self._turn += 1
                self._cond.notify_all()
        return batch.outcome(0, count)

    def _wait_for_turn(self, batch: _Batch[T, R], *, deadline: float) -> None:
        """Until the batch is full or the wait is over, and the batch before it has run."""
        while True:
            remaining = deadline - time.monotonic()
            full = batch.sealed or len(batch.items) >= self.max_batch
            if self._turn == batch.seq and (full or remaining <= 0):
                return
            # Joins, seals and finished batches all notify; only the deadline needs a timeout.
            self._cond.wait(timeout=None if full or remaining <= 0 else remaining)

    def _run(self, batch: _Batch[T, R]) -> None:
        try:
            results = list(self.fn(list(batch.items)))
            if len(results) != len(batch.items):
                raise ValueError(
                    f"batched function returned {len(results)} results for {len(batch.items)}"
                )
            batch.results = results
        except BaseException as error:  # every caller of this batch sees it, the leader too
            batch.error = error
        with self._cond:
            self.stats.calls += 1
            self.stats.items += len(batch.items)
            self.stats.largest = max(self.stats.largest, len(batch.items))
