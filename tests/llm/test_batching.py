"""The micro-batcher, with plain Python functions and then with the real embedding model."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from agents.llm.batching import MicroBatcher


def _in_threads(count: int, work: Callable[[int], object]) -> list[object]:
    """Run work(0..count-1) in threads released together; results (or errors) by index."""
    start = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = work(index)
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a caller never got its results"
    return results


def _doubling(items: list[int]) -> list[int]:
    time.sleep(0.005)  # a model call takes a while; callers arriving meanwhile queue up
    return [item * 2 for item in items]


def test_concurrent_single_item_requests_share_calls_and_each_gets_its_own_result():
    batcher = MicroBatcher(_doubling, max_batch=64, max_wait_ms=50)

    results = _in_threads(16, lambda index: batcher.submit([index]))

    assert results == [[index * 2] for index in range(16)]
    assert batcher.stats.calls < 16
    assert batcher.stats.items == 16


def test_a_multi_item_request_gets_its_results_in_order():
    batcher = MicroBatcher(_doubling, max_batch=64, max_wait_ms=20)

    results = _in_threads(4, lambda index: batcher.submit([index * 10 + n for n in range(5)]))

    assert results == [[(index * 10 + n) * 2 for n in range(5)] for index in range(4)]


def test_a_request_larger_than_a_batch_is_split():
    calls: list[list[int]] = []

    def recording(items: list[int]) -> list[int]:
        calls.append(items)
        return [item + 1 for item in items]

    batcher = MicroBatcher(recording, max_batch=4, max_wait_ms=1)

    assert batcher.submit(list(range(10))) == [item + 1 for item in range(10)]
    assert [len(call) for call in calls] == [4, 4, 2]


def test_no_call_is_given_more_than_max_batch_items_under_contention():
    sizes: list[int] = []

    def recording(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return _doubling(items)

    batcher = MicroBatcher(recording, max_batch=5, max_wait_ms=20)

    results = _in_threads(12, lambda index: batcher.submit([index, index + 100, index + 200]))

    assert results == [[index * 2, (index + 100) * 2, (index + 200) * 2] for index in range(12)]
    assert max(sizes) <= 5
    assert sum(sizes) == 36


def test_an_error_reaches_every_caller_of_its_batch_and_the_next_batch_works():
    failing = threading.Event()
    failing.set()

    def flaky(items: list[int]) -> list[int]:
        time.sleep(0.005)
        if failing.is_set():
            raise RuntimeError("model crashed")
        return [item * 2 for item in items]

    batcher = MicroBatcher(flaky, max_batch=64, max_wait_ms=200)

    results = _in_threads(6, lambda index: batcher.submit([index]))
    failing.clear()

    assert batcher.stats.calls == 1
    assert all(isinstance(result, RuntimeError) for result in results)
    assert batcher.submit([21]) == [42]


def test_a_function_returning_the_wrong_number_of_results_is_an_error_for_its_callers():
    batcher = MicroBatcher(lambda items: items[:-1], max_batch=8, max_wait_ms=1)

    with pytest.raises(ValueError, match="returned 1 results for 2"):
        batcher.submit(["a", "b"])
    assert batcher.submit([]) == []


def test_a_lone_caller_waits_not_much_longer_than_max_wait():
    batcher = MicroBatcher(lambda items: items, max_batch=64, max_wait_ms=20)

    started = time.monotonic()
    assert batcher.submit(["only"]) == ["only"]
    elapsed = time.monotonic() - started

    # Generous: a loaded CI machine may be slow to wake the thread, never by a whole second.
    assert elapsed < 0.020 + 0.25


def test_a_full_batch_runs_without_waiting_out_max_wait():
    batcher = MicroBatcher(lambda items: items, max_batch=3, max_wait_ms=10_000)

    started = time.monotonic()
    assert batcher.submit([1, 2, 3]) == [1, 2, 3]

    assert time.monotonic() - started < 1


def test_concurrent_local_embeddings_equal_one_batched_call():
    from agents.llm import local

    texts = [f"Where is order number {n}? It has not arrived." for n in range(8)]
    texts[3] = "A much longer message, so that the batch needs padding: " + "please " * 20
    expected = local.embed(texts)

    results = _in_threads(8, lambda index: local.embed([texts[index]]))

    for [vector], reference in zip(results, expected, strict=True):
        assert vector == pytest.approx(reference, abs=1e-5)
