"""Runs under the one lease (aios_site/core/lease.py, agents/services/execution.py
`slice_lease`): a slice is renewed from the worker's renewer process however long its step
takes, a worker paused past its lease writes nothing once another took the run over, a run
whose every claim dies fails after AIOS_RUN_MAX_CLAIMS, and lost messages are sent again."""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.db.models.functions import Now
from django.utils import timezone

from agents.checkpoints import claim_and_open
from agents.models import Checkpoint, JournalEntry, Run
from agents.pipelines import Pipeline, finish, register, step
from agents.services import run_advance, run_start, runs_sweep
from agents.services.execution import slice_lease
from tests.agents.conftest import calls_of, steps_of, wait_for_run
from tests.agents.processes import start_beat, start_worker
from tests.helpers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


class WorkerDied(BaseException):
    """Escapes the engine as a worker's death does: nothing after it runs, nothing commits."""


@register
class Poison(Pipeline):
    """A step that kills its worker; its own retry limit is far off, so only the claims
    counted in the run's row can stop it."""

    name = "test.poison"

    @step(attempts=100)
    def start(self, ctx):
        raise WorkerDied()

    @step()
    def never(self, ctx):
        return finish({})


def _progress(run_id: int) -> tuple:
    """What a holder of the run writes: its row (but the lease's expiry, which the holder's
    renewer moves on) and its checkpoints."""
    row = Run.objects.filter(pk=run_id).values().get()
    row.pop("lease_expires_at")
    return row, list(Checkpoint.objects.filter(run_id=run_id).order_by("pk").values())


@pytest.mark.slow
def test_a_run_slice_slower_than_its_lease_keeps_its_run(make_agent, key):
    """The step sleeps three leases (ENGINE_ENV: 3 s) on a real worker; meanwhile this
    process tries the claim another worker would make, again and again."""
    worker = start_worker()
    stolen, held = 0, []
    try:
        run, _ = run_start(agent=make_agent("demo.slow"), input={"key": key, "seconds": 9})
        wait_for_run(run.pk, "running")
        while Run.objects.get(pk=run.pk).status == "running":
            held.append(Run.objects.filter(pk=run.pk, lease_expires_at__gt=Now()).exists())
            stolen += claim_and_open(run_id=run.pk, kind=slice_lease()) is not None
            time.sleep(0.2)
        done = wait_for_run(run.pk, "succeeded")
    finally:
        worker.stop()

    assert stolen == 0
    assert len(held) > 30 and all(held[:-1])  # the last look may fall after the release
    assert steps_of(done) == [(1, "start", 1, "ok"), (2, "done", 1, "ok")]
    assert done.lease_token == 1 and done.lease_expires_at is None
    assert calls_of(key) == 1


@pytest.mark.slow
def test_a_worker_paused_past_its_lease_cannot_write_a_checkpoint_after_another_took_over(
    make_agent, key
):
    """SIGSTOP to the first worker (its renewer included) inside the step: the lease runs
    out, the sweep sends the run again, and a second worker takes it over. The first is woken
    while the second is still in the step: it completes its own attempt and commits it, and
    the run and its checkpoints do not change. (Its call's answer may still be journaled: a
    call that was made is a fact, which the second reuses instead of calling again.)"""
    first, beat = start_worker(), start_beat()
    second = None
    try:
        run, _ = run_start(agent=make_agent("demo.slow"), input={"key": key, "seconds": 8})
        wait_until(lambda: JournalEntry.objects.filter(run=run, name="demo.count").exists())
        time.sleep(0.3)  # inside demo.sleep
        first.pause()
        slept = time.monotonic() + 8
        second = start_worker()
        wait_until(lambda: Checkpoint.objects.filter(run=run, seq=1, attempt=2).exists())
        time.sleep(max(0.0, slept - time.monotonic()))  # the first's sleep is over: it commits
        before = _progress(run.pk)
        woken = len(first.lines)
        first.resume()
        returned = re.compile(r"agents\.run_advance\[.*\] (succeeded|raised)")
        wait_until(lambda: any(returned.search(line) for line in first.lines[woken:]), timeout=30)
        after = _progress(run.pk)
        done = wait_for_run(run.pk, "succeeded", timeout=60)
    finally:
        for process in (first, second, beat):
            if process is not None:
                process.stop()

    assert before[1][-1]["status"] == "running"  # the second was still in its attempt
    assert after == before  # the first's commit was fenced off: nothing written
    assert done.lease_token == 2
    assert steps_of(done) == [(1, "start", 1, "error"), (1, "start", 2, "ok"), (2, "done", 1, "ok")]
    assert Checkpoint.objects.get(run=done, seq=1, attempt=1).error == (
        "worker lost; the run was recovered"
    )
    assert calls_of(key) == 1  # the counted call was journaled before the pause, and reused


def test_a_poison_run_ends_failed_after_the_claim_limit_with_the_reason(make_agent, settings):
    settings.AIOS_RUN_MAX_CLAIMS = 3
    settings.AIOS_RUN_STALE_SECONDS = 0.5  # the run's lease
    run, _ = run_start(agent=make_agent("test.poison"), input={})
    for _ in range(3):
        with pytest.raises(WorkerDied):
            run_advance(run_id=run.pk)
        wait_until(lambda: Run.objects.filter(pk=run.pk, lease_expires_at__lt=Now()).exists())

    run_advance(run_id=run.pk)  # refused: no claims left
    assert Run.objects.get(pk=run.pk).status == "running"
    assert runs_sweep()["gave_up"] == 1

    failed = Run.objects.get(pk=run.pk)
    assert failed.status == "failed" and failed.finished_at is not None
    assert failed.error.startswith("gave up after 3 claims in a row that each ended without")
    assert failed.lease_expires_at is None
    assert steps_of(failed) == [(1, "start", n, "error") for n in (1, 2, 3)]
    assert set(failed.checkpoints.values_list("error", flat=True)) == {
        "worker lost; the run was recovered"
    }


def test_a_run_of_more_slices_than_the_claim_limit_finishes(make_agent, settings):
    """Every committed step is progress: the claims of a long run never add up."""
    settings.AIOS_RUN_MAX_CLAIMS = 2
    settings.AIOS_RUN_SLICE_SECONDS = 0  # a slice of one step: three claims for demo.noop
    run, _ = run_start(agent=make_agent("demo.noop"), input={})
    for _ in range(3):
        run_advance(run_id=run.pk)

    done = Run.objects.get(pk=run.pk)
    assert done.status == "succeeded" and done.lease_token == 3 and done.lease_attempts == 0


def _messages_for(run_id: int) -> list[tuple[str, bytes]]:
    """The Celery messages waiting for the run in the queues (Redis lists)."""
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    found = []
    for queue in ("interactive", "default", "bulk"):
        for raw in client.lrange(queue, 0, -1):
            message = json.loads(raw)
            args = json.loads(base64.b64decode(message["body"]))[0]
            if message["headers"].get("task") == "agents.run_advance" and args == [run_id]:
                found.append((queue, raw))
    return found


def _lose(run_id: int) -> None:
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    for queue, raw in _messages_for(run_id):
        client.lrem(queue, 0, raw)


def test_a_lost_queued_run_is_sent_again_by_the_sweep_once(make_agent):
    run, _ = run_start(agent=make_agent("demo.noop"), input={})
    assert len(_messages_for(run.pk)) == 1
    _lose(run.pk)  # e.g. Redis restarted without its data
    Run.objects.filter(pk=run.pk).update(enqueued_at=timezone.now() - timedelta(minutes=2))

    assert runs_sweep()["requeued"] == 1
    assert len(_messages_for(run.pk)) == 1
    assert runs_sweep()["requeued"] == 0  # sent just now: the next sweeps leave it be
    assert len(_messages_for(run.pk)) == 1

    _lose(run.pk)
    run_advance(run_id=run.pk)  # the worker that got it
    assert Run.objects.get(pk=run.pk).status == "succeeded"
