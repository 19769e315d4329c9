"""Sending many small tasks as a few batched ones.

A burst of webhooks is hundreds of requests a second, each of which only needs a worker to
look at one stored row. Publishing a Celery message per request costs the web process about
as much as storing the row; collecting the ids for a few milliseconds and publishing one
message per batch costs a fraction. What is collected is only ever a hint: the rows are
already committed, and a sweep picks up any whose batch was lost (the process died, or the
broker was down), so losing the in-memory list loses no work.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Batcher:
    """`add(item)` from any thread; a background thread calls `send(items)` with what has
    gathered, at most every `linger` seconds and at most `size` items at a time."""

    def __init__(self, send: Callable[[list], None], *, linger: float = 0.005, size: int = 100):
        self.send, self.linger, self.size = send, linger, size
        self._pid = None
        self._starting = threading.Lock()

    def add(self, item) -> None:
        self._ensure_started()
        with self._ready:
            self._items.append(item)
            self._ready.notify()

    def flush(self) -> None:
        """Sends what is pending now, in this thread."""
        self._ensure_started()
        while batch := self._take():
            self._send(batch)

    def _ensure_started(self) -> None:
        # A forked child inherits the parent's list but not its thread: it starts its own.
        # Checked again under the lock: the first two adds may come from two threads.
        if self._pid == os.getpid():
            return
        with self._starting:
            if self._pid == os.getpid():
                return
            self._items: list = []
            self._ready = threading.Condition()
            threading.Thread(target=self._loop, name="batcher", daemon=True).start()
            self._pid = os.getpid()

    def _loop(self) -> None:
        ready = self._ready
        while True:
            with ready:
                ready.wait_for(lambda: self._items)
            time.sleep(self.linger)  # let the burst gather
            while batch := self._take():
                self._send(batch)

    def _take(self) -> list:
        with self._ready:
            batch = self._items[: self.size]
            del self._items[: self.size]
            return batch

    def _send(self, batch: list) -> None:
        try:
            self.send(batch)
        except Exception:  # the broker is down: the sweep will find the rows
            log.warning("could not queue a batch of %d; the sweep will pick them up", len(batch))
