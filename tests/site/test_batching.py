"""The batcher behind webhook processing: everything added is sent, in bounded batches,
and a send that fails is logged without stopping the ones after it."""

from __future__ import annotations

import threading

from aios_site.batching import Batcher
from tests.helpers import wait_until


def test_items_added_from_many_threads_are_all_sent_in_batches_of_at_most_the_size():
    batches: list[list[int]] = []
    batcher = Batcher(batches.append, linger=0.002, size=25)

    threads = [
        threading.Thread(target=lambda base=base: [batcher.add(base + i) for i in range(100)])
        for base in range(0, 500, 100)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    wait_until(lambda: sum(map(len, batches)) == 500, timeout=10)
    assert sorted(item for batch in batches for item in batch) == list(range(500))
    assert max(map(len, batches)) <= 25 and len(batches) < 500


def test_a_failed_send_is_logged_and_later_batches_still_go(caplog):
    sent: list[list[str]] = []

    def flaky(batch):
        if batch == ["first"]:
            raise ConnectionError("broker unreachable")
        sent.append(batch)

    batcher = Batcher(flaky)
    batcher.add("first")
    batcher.flush()  # the first send fails, in this thread or the batcher's
    batcher.add("second")

    wait_until(lambda: sent == [["second"]], timeout=5)  # sent by flush or by its thread
    assert "the sweep will pick them up" in caplog.text
