"""Workers paused past their lease (SIGSTOP to the whole worker, its renewer included), then
woken (SIGCONT): whatever the paused worker still does is fenced off. Real Celery workers and
beat on the test database, a local receiver that applies each request it accepts."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from agents.models import Run
from agents.services import run_start
from aios_site.core.actors import Actor
from approvals.audit import audit_verify
from approvals.models import Proposal
from approvals.services import webhook_endpoint_save
from tests.agents.conftest import wait_for_run
from tests.agents.processes import start_beat, start_worker
from tests.fakes.receiver import Receiver
from tests.helpers import pending_proposal, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

WEBHOOK = {"endpoint": "crm", "body": {"customer": "c-1", "tag": "vip"}}
BUSY = (429, {"Retry-After": "5"})  # the first answer: come back in five seconds (> a lease)


@pytest.fixture
def receiver(workspace):
    server = Receiver(script=[BUSY])
    webhook_endpoint_save(
        workspace=workspace, name="crm", url=server.url, secret="s" * 20, actor=Actor.system("t")
    )
    yield server
    server.close()


def _approved_commit(proposer) -> Proposal:
    from approvals.tasks import proposal_commit

    proposal = pending_proposal(
        proposer,
        effector="core.webhook",
        payload=WEBHOOK,
        status="approved",
        decided_at=timezone.now(),
    )
    proposal_commit.delay(proposal.pk)
    return proposal


def test_a_worker_paused_past_its_commit_lease_sends_nothing_after_another_took_over(
    proposer, receiver
):
    first, beat = start_worker(), start_beat()
    second = None
    try:
        proposal = _approved_commit(proposer)
        wait_until(lambda: len(receiver.requests) == 1, timeout=30)  # answered 429, waiting
        first.pause()
        second = start_worker()  # the sweep hands the commit to it once the lease runs out
        wait_until(lambda: Proposal.objects.get(pk=proposal.pk).status == "committed", timeout=60)
        first.resume()
        time.sleep(8)  # the first wakes, its wait ends, and it would send again
    finally:
        _stop(first, second, beat)

    done = Proposal.objects.get(pk=proposal.pk)
    assert len(receiver.requests) == 2  # the first's 429, the second's write: nothing after
    assert len(receiver.effects) == 1
    assert done.status == "committed" and done.lease_attempts == 2
    assert audit_verify().ok


def test_a_commit_given_up_while_its_worker_was_paused_never_lands_afterwards(proposer, receiver):
    gives_up = {"AIOS_COMMIT_MAX_ATTEMPTS": "1"}
    first, beat = start_worker(env=gives_up), start_beat(env=gives_up)
    second = None
    try:
        proposal = _approved_commit(proposer)
        wait_until(lambda: len(receiver.requests) == 1, timeout=30)
        first.pause()
        second = start_worker(env=gives_up)  # runs the sweep, which gives the commit up
        wait_until(lambda: Proposal.objects.get(pk=proposal.pk).status == "failed", timeout=60)
        first.resume()
        time.sleep(8)
    finally:
        _stop(first, second, beat)

    failed = Proposal.objects.get(pk=proposal.pk)
    assert "gave up after 1 attempts" in failed.error
    assert len(receiver.requests) == 1 and receiver.effects == {}  # "nothing applied" holds


def test_a_run_whose_worker_was_paused_is_finished_by_another_and_the_late_writes_are_fenced(
    make_agent,
):
    """demo.sleep's step outlasts the run's lease while its worker is stopped: another worker
    takes the run over; the first, woken, can write neither its checkpoint nor the run."""
    agent = make_agent("demo.slow", slug="slow")
    first, beat = start_worker(), start_beat()
    second = None
    try:
        run, _ = run_start(agent=agent, input={"key": "paused-run", "seconds": 4})
        wait_for_run(run.pk, "running", timeout=30)
        time.sleep(0.5)  # inside the step
        first.pause()
        second = start_worker()
        done = wait_for_run(run.pk, "succeeded", timeout=60)
        token = done.lease_token
        first.resume()
        time.sleep(5)
    finally:
        _stop(first, second, beat)

    after = Run.objects.get(pk=run.pk)
    assert after.status == "succeeded" and after.lease_token == token
    attempts = dict(after.checkpoints.filter(seq=1).values_list("attempt", "status"))
    assert attempts == {1: "error", 2: "ok"}  # the paused worker's own close was fenced off
    assert after.checkpoints.filter(status="ok").count() == after.next_seq - 1


def _stop(*processes) -> None:
    for process in processes:
        if process is not None:
            process.stop()
