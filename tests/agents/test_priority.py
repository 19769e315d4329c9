"""Priority: the run goes to the Celery queue of its priority (no shared worker here)."""

from __future__ import annotations

import time

import pytest

from agents.models import Run
from agents.services import run_start
from tests.agents.conftest import wait_for_run
from tests.agents.processes import CeleryProcess

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_priority_routes_the_run_to_its_queue(make_agent):
    bulk_only = start_worker_on("bulk")
    try:
        agent = make_agent("demo.noop", priority="bulk")
        run, _ = run_start(agent=agent, input={})
        assert wait_for_run(run.pk, "succeeded").priority == "bulk"
        interactive, _ = run_start(agent=agent, input={}, priority="interactive")
        time.sleep(2)
        assert Run.objects.get(pk=interactive.pk).status == "queued"  # nobody serves that queue
    finally:
        bulk_only.stop()


def start_worker_on(queue: str) -> CeleryProcess:
    return CeleryProcess("worker", "-Q", queue, "-c", "1", ready=r"ready\.")
