"""Proposals with real Celery workers: commit after approval resumes the run; a worker killed
mid-commit leaves exactly one effect at the receiver."""

from __future__ import annotations

import pytest

from agents.services import run_start
from approvals.audit import Actor, audit_verify
from approvals.models import Proposal
from approvals.services import proposal_approve, webhook_endpoint_save
from memory.models import MemoryItem
from tests.agents.conftest import wait_for_run
from tests.agents.processes import start_beat, start_worker
from tests.fakes.receiver import Receiver
from tests.helpers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WEBHOOK = {"endpoint": "crm", "body": {"customer": "c-1", "tag": "vip"}}


def test_an_auto_approved_note_is_committed_by_a_worker_and_the_run_finishes(proposer):
    worker, beat = start_worker(), start_beat()
    try:
        run, _ = run_start(
            agent=proposer, input={"effector": "core.note", "payload": {"content": "Hello."}}
        )
        done = wait_for_run(run.pk, "succeeded", timeout=60)
    finally:
        beat.stop()
        worker.stop()

    assert done.outcome["status"] == "committed"
    assert MemoryItem.objects.filter(namespace="notes", content="Hello.").count() == 1


def test_a_worker_killed_mid_commit_leaves_exactly_one_effect(proposer, workspace, operator):
    receiver = Receiver(delay=4)  # applies, then takes its time to answer
    webhook_endpoint_save(
        workspace=workspace,
        name="crm",
        url=receiver.url,
        secret="s" * 20,
        actor=Actor("user", "test"),
    )
    first, beat = start_worker(), start_beat()
    try:
        run, _ = run_start(agent=proposer, input={"effector": "core.webhook", "payload": WEBHOOK})
        wait_for_run(run.pk, "waiting")
        proposal = Proposal.objects.get(run=run)
        proposal_approve(
            proposal=proposal,
            membership=operator.memberships.get(),
            shown_hash=proposal.payload_hash,
        )
        wait_until(lambda: len(receiver.requests) == 1)
        first.kill()  # the effect is applied; the commit was never recorded
        second = start_worker()
        try:
            done = wait_for_run(run.pk, "succeeded", timeout=90)
        finally:
            second.stop()
    finally:
        beat.stop()
        first.stop()
        receiver.close()

    assert len(receiver.requests) >= 2  # tried again after the crash, with the same key
    assert {r["headers"]["idempotency-key"] for r in receiver.requests} == {
        f"aios-proposal-{proposal.pk}"
    }
    assert len(receiver.effects) == 1
    assert done.outcome["status"] == "committed"
    assert Proposal.objects.get().commit_attempts >= 2
    assert audit_verify().ok
