from __future__ import annotations

import time

import pytest
import redis
from django.conf import settings

from agents.models import Checkpoint, Run
from agents.services import run_advance
from agents.tools import DEMO_COUNTER
from tests.agents.processes import start_worker


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker):
    """One real Celery worker (queues interactive, default, bulk) for the module's tests."""
    process = start_worker()
    yield process
    process.stop()


def wait_for_run(run_id: int, *statuses: str, timeout: float = 30) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = Run.objects.get(pk=run_id)
        if run.status in statuses:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} is {run.status}, not {statuses}, after {timeout}s")


def calls_of(key: str) -> int:
    return int(redis.Redis.from_url(settings.REDIS_URL).get(DEMO_COUNTER.format(key=key)) or 0)


def steps_of(run: Run) -> list[tuple[int, str, int, str]]:
    return list(Checkpoint.objects.filter(run=run).values_list("seq", "step", "attempt", "status"))


def drive(run: Run) -> Run:
    """Executes a run here until it waits or ends (retries included)."""
    for _ in range(50):
        run.refresh_from_db()
        if run.status != "queued":
            return run
        Run.objects.filter(pk=run.pk).update(not_before=None)  # no waiting out backoffs here
        run_advance(run_id=run.pk)
    raise AssertionError("the run did not settle")
