"""Fault tests with real processes; no shared worker runs in this module, so the run is
certainly on the worker that gets killed."""

from __future__ import annotations

import time

import pytest

from agents.models import Checkpoint, JournalEntry
from agents.services import run_start
from tests.agents.conftest import calls_of, steps_of, wait_for_run
from tests.agents.processes import start_beat, start_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_worker_killed_mid_step_loses_nothing_and_pays_no_call_twice(make_agent, key):
    first = start_worker()
    beat = start_beat()
    try:
        run, _ = run_start(agent=make_agent("demo.slow"), input={"key": key, "seconds": 3})
        wait_for_run(run.pk, "running")
        while not JournalEntry.objects.filter(run=run, name="demo.count").exists():
            time.sleep(0.05)
        first.kill()  # SIGKILL, mid-sleep, after the counted call was journaled
        second = start_worker()
        try:
            done = wait_for_run(run.pk, "succeeded", timeout=60)
        finally:
            second.stop()
    finally:
        beat.stop()
        first.stop()

    assert done.outcome == {"count": 1}
    assert calls_of(key) == 1
    assert steps_of(done) == [(1, "start", 1, "error"), (1, "start", 2, "ok"), (2, "done", 1, "ok")]
    lost = Checkpoint.objects.get(run=done, seq=1, attempt=1)
    assert lost.error == "worker lost; the run was recovered"
    completed = JournalEntry.objects.filter(run=done, ok=True)
    assert list(completed.values_list("seq", "position", "name")) == [
        (1, 0, "demo.count"),
        (1, 1, "demo.sleep"),
    ]
