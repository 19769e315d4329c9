"""Execution semantics with real Celery workers: claim, wait/resume, retries, cancel, recovery."""

from __future__ import annotations

import itertools
import time

import pytest

from agents.models import Checkpoint, CheckpointStatus, JournalEntry, Trigger
from agents.services import run_answer, run_cancel, run_start
from agents.tasks import run_advance
from tests.agents.conftest import calls_of, steps_of, wait_for_run
from tests.agents.processes import start_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_run_waits_for_an_answer_and_resumes_where_the_pipeline_said(worker, make_agent):
    run, _ = run_start(agent=make_agent("demo.echo"), input={"text": "hello"})

    waiting = wait_for_run(run.pk, "waiting")
    assert waiting.waiting_for == {
        "kind": "escalation",
        "resume": "finish",
        "key": "answer",
        "question": "continue?",
    }
    run_answer(run=waiting, answer="yes")

    done = wait_for_run(run.pk, "succeeded")
    assert done.outcome == {"input": {"text": "hello"}, "answer": "yes"}
    assert steps_of(done) == [(1, "start", 1, "ok"), (2, "ask", 1, "ok"), (3, "finish", 1, "ok")]
    kinds = list(JournalEntry.objects.filter(run=done).values_list("kind", flat=True))
    assert kinds == ["clock", "random"]


def test_a_transient_failure_is_retried_with_backoff_and_completed_calls_are_not_repeated(
    worker, make_agent, key
):
    run, _ = run_start(agent=make_agent("demo.flaky"), input={"key": key, "failures": 2})

    done = wait_for_run(run.pk, "succeeded")

    assert done.outcome == {"count": 1, "flaky_calls": 3}
    assert calls_of(key) == 1  # the first call of the step ran once, across three attempts
    attempts = list(Checkpoint.objects.filter(run=done).order_by("attempt"))
    assert [(c.attempt, c.status) for c in attempts] == [(1, "error"), (2, "error"), (3, "ok")]
    assert "TransientError" in attempts[0].error
    for before, after in itertools.pairwise(attempts):
        # backoff 0.2 s doubling, jittered to at least half of it
        assert (after.started_at - before.finished_at).total_seconds() >= 0.1 * before.attempt


def test_a_permanent_failure_fails_the_run_without_retrying(worker, make_agent, key):
    # A run the system starts is not refused for its input (a manual one is, with a 422):
    # without "key", its step fails with a KeyError.
    run, _ = run_start(agent=make_agent("demo.slow"), input={}, trigger=Trigger.WEBHOOK)

    failed = wait_for_run(run.pk, "failed")

    assert failed.error == "KeyError: 'key'"
    assert steps_of(failed) == [(1, "start", 1, "error")]


def test_a_waiting_run_is_cancelled_at_once(worker, make_agent):
    run, _ = run_start(agent=make_agent("demo.echo"), input={})
    wait_for_run(run.pk, "waiting")

    cancelled = run_cancel(run=run)

    assert cancelled.status == "cancelled" and cancelled.finished_at is not None


def test_a_running_step_finishes_its_current_call_then_the_run_stops(worker, make_agent, key):
    run, _ = run_start(agent=make_agent("demo.slow"), input={"key": key, "seconds": 2})
    wait_for_run(run.pk, "running")
    while not JournalEntry.objects.filter(run=run, name="demo.count").exists():
        time.sleep(0.05)

    run_cancel(run=run)

    stopped = wait_for_run(run.pk, "cancelled")
    assert steps_of(stopped) == [(1, "start", 1, "ok")]  # "done" never ran
    assert stopped.outcome is None


def test_two_workers_and_duplicate_messages_execute_every_step_exactly_once(worker, make_agent):
    second = start_worker()
    try:
        agent = make_agent("demo.noop")
        runs = [run_start(agent=agent, input={"n": n})[0] for n in range(12)]
        for run in runs:  # every message delivered three times in all
            run_advance.apply_async(args=[run.pk], queue="default")
            run_advance.apply_async(args=[run.pk], queue="bulk")
        for run in runs:
            wait_for_run(run.pk, "succeeded")
    finally:
        second.stop()

    for run in runs:
        assert steps_of(run) == [(1, "start", 1, "ok"), (2, "middle", 1, "ok"), (3, "end", 1, "ok")]


def test_checkpoint_status_values_are_the_documented_ones():
    assert set(CheckpointStatus.values) == {"running", "ok", "error", "waiting", "cancelled"}
