"""Effects and approvals hold when a commit is slow, fails unexpectedly or is retried
(issue 17, behaviours 1 to 7). The commit runs in this process against a local receiver; the
lease's renewer is the real one, so these tests use committed transactions."""

from __future__ import annotations

import contextlib
import smtplib
import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from agents.models import Run
from agents.services import run_cancel, run_start
from aios_site.core.actors import Actor
from aios_site.core.errors import Conflict, TransientError
from approvals.models import Outbox, Proposal
from approvals.services import (
    proposal_approve,
    proposal_commit,
    proposal_undo,
    proposals_sweep,
    webhook_endpoint_save,
)
from memory.selectors import memory_current
from memory.services import Source, memory_write
from tests.agents.conftest import drive
from tests.fakes.receiver import Receiver
from tests.helpers import effect_then, pending_proposal

pytestmark = pytest.mark.django_db(transaction=True)

WEBHOOK = {"endpoint": "crm", "body": {"customer": "c-1", "tag": "vip"}}


@pytest.fixture
def fast_leases(settings):
    settings.AIOS_LEASE_SECONDS = 1.0
    settings.AIOS_RUN_STALE_SECONDS = 1.0  # what the commit's lease was before it had its own


def _endpoint(workspace, receiver: Receiver) -> None:
    webhook_endpoint_save(
        workspace=workspace, name="crm", url=receiver.url, secret="s" * 20, actor=Actor.system("t")
    )


def _approved(agent, effector="core.webhook", payload=None, **fields) -> Proposal:
    return pending_proposal(
        agent,
        effector=effector,
        payload=WEBHOOK if payload is None else payload,
        status="approved",
        decided_at=timezone.now(),
        **fields,
    )


def test_a_commit_slower_than_its_lease_is_never_started_a_second_time(
    fast_leases, proposer, workspace
):
    receiver = Receiver(delay=3)  # applies at once, answers after three leases
    _endpoint(workspace, receiver)
    proposal = _approved(proposer)
    first = threading.Thread(target=proposal_commit, kwargs={"proposal_id": proposal.pk})
    try:
        first.start()
        deadline = time.monotonic() + 10
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2)  # twice the lease: only renewal keeps it
        proposals_sweep()
        proposal_commit(proposal_id=proposal.pk)  # a second worker, given the same task
        first.join(timeout=10)
    finally:
        receiver.close()

    assert len(receiver.requests) == 1
    done = Proposal.objects.get(pk=proposal.pk)
    assert done.status == "committed" and done.lease_attempts == 1


def test_transient_failures_are_retried_a_bounded_number_of_times_whatever_the_sweeps(
    fast_leases, settings, proposer, workspace
):
    settings.AIOS_COMMIT_MAX_ATTEMPTS = 3
    receiver = Receiver(status=503)
    _endpoint(workspace, receiver)
    proposal = _approved(proposer)
    try:
        for _ in range(12):  # task retries and sweeps, in any number
            with contextlib.suppress(TransientError):
                proposal_commit(proposal_id=proposal.pk)
            Proposal.objects.filter(pk=proposal.pk).update(
                decided_at=timezone.now() - timedelta(minutes=1)
            )
            proposals_sweep()
    finally:
        receiver.close()

    failed = Proposal.objects.get(pk=proposal.pk)
    assert failed.status == "failed"
    assert failed.lease_attempts == 3
    assert "gave up after 3 attempts" in failed.error and "503" in failed.error
    assert len(receiver.requests) == 3  # one send per attempt (no Retry-After), no more


def test_a_send_from_a_holder_that_lost_its_lease_never_leaves(fast_leases, proposer, workspace):
    """The late write of a paused holder: it wakes after its lease was given up and "failed,
    nothing applied" recorded, and its next send is refused before it leaves."""
    receiver = Receiver(script=[(429, {"Retry-After": "2"})])
    _endpoint(workspace, receiver)
    proposal = _approved(proposer)
    from aios_site.core import renewer as renewing

    stopped = renewing.renewer().hold  # as if this worker were paused: nothing renews
    renewing.renewer().hold = lambda *a, **k: None
    try:
        holder = threading.Thread(target=proposal_commit, kwargs={"proposal_id": proposal.pk})
        holder.start()  # first send → 429, waits 2 s in place
        time.sleep(1.5)  # its lease (1 s) runs out meanwhile
        taken = Proposal.objects.filter(pk=proposal.pk)
        taken.update(lease_attempts=99)  # no attempts left: the sweep gives up on it
        proposals_sweep()
        assert taken.get().status == "failed"
        holder.join(timeout=10)
    finally:
        renewing.renewer().hold = stopped
        receiver.close()

    assert len(receiver.requests) == 1  # the 429; the send after the wait never left
    assert receiver.effects == {}
    assert Proposal.objects.get(pk=proposal.pk).status == "failed"


@pytest.mark.parametrize(
    "error",
    [Conflict("the note changed meanwhile"), smtplib.SMTPDataError(554, b"refused"), KeyError("x")],
    ids=["conflict", "smtp", "bug"],
)
def test_an_unexpected_exception_in_an_effector_fails_the_proposal_with_the_error(
    proposer, monkeypatch, error
):
    from approvals.effectors import Note

    def broken(self, *args, **kwargs):
        raise error

    monkeypatch.setattr(Note, "commit", broken)
    proposal = _approved(proposer, effector="core.note", payload={"content": "hello"})

    proposal_commit(proposal_id=proposal.pk)
    proposal_commit(proposal_id=proposal.pk)  # a redelivery changes nothing

    failed = Proposal.objects.get(pk=proposal.pk)
    assert failed.status == "failed"
    assert type(error).__name__ in failed.error or str(error) in failed.error
    assert failed.lease_attempts == 1


def test_a_removed_effector_fails_the_proposal_instead_of_leaving_it_approved(proposer):
    proposal = _approved(proposer, effector="gone.effector", payload={"x": 1})

    proposal_commit(proposal_id=proposal.pk)

    failed = Proposal.objects.get(pk=proposal.pk)
    assert failed.status == "failed" and "gone.effector" in failed.error


def test_undo_restores_what_was_there_before_the_first_attempt(proposer, workspace, owner):
    """The first attempt applied the edit and died before recording it; the retry reads the
    note as the first attempt left it, but undo still restores the text before either."""
    memory_write(
        workspace=workspace, namespace="notes", key="hours", kind="note",
        content="Open 9 to 5.", source=Source("run"),
    )  # fmt: skip
    proposal = _approved(
        proposer, effector="core.note", payload={"key": "hours", "content": "Open 8 to 6."}
    )
    from approvals.effectors import Note

    _commit_dying_after_the_effect(Note, proposal)
    proposal_commit(proposal_id=proposal.pk)
    committed = Proposal.objects.get(pk=proposal.pk)
    assert committed.status == "committed" and committed.lease_attempts == 2

    proposal_undo(proposal=committed, membership=owner.memberships.get())

    note = memory_current(workspace_id=workspace.pk, namespace="notes", key="hours")
    assert note is not None and note.content == "Open 9 to 5."


def test_undoing_a_note_edit_restores_the_previous_text_instead_of_deleting_it(
    proposer, workspace, owner
):
    memory_write(
        workspace=workspace, namespace="notes", key="returns", kind="note",
        content="Returns within 30 days.", source=Source("run"),
    )  # fmt: skip
    proposal = _approved(
        proposer, effector="core.note", payload={"key": "returns", "content": "Within 45 days."}
    )
    proposal_commit(proposal_id=proposal.pk)

    proposal_undo(proposal=Proposal.objects.get(pk=proposal.pk), membership=owner.memberships.get())

    note = memory_current(workspace_id=workspace.pk, namespace="notes", key="returns")
    assert note is not None and note.content == "Returns within 30 days."


def test_undoing_a_new_note_deletes_it(proposer, workspace, owner):
    proposal = _approved(
        proposer, effector="core.note", payload={"key": "fresh", "content": "Brand new."}
    )
    proposal_commit(proposal_id=proposal.pk)

    proposal_undo(proposal=Proposal.objects.get(pk=proposal.pk), membership=owner.memberships.get())

    assert memory_current(workspace_id=workspace.pk, namespace="notes", key="fresh") is None


def test_a_reply_by_email_is_sent_once_across_retries_and_redeliveries(
    settings, workspace, make_agent
):
    """A worker that handed the mail to SMTP and died before recording the commit: the retry
    finds the hand-over in the outbox and does not send it again."""
    from catalog.effectors import SendReply

    proposal = _reply_by_email(settings, workspace, make_agent)

    _commit_dying_after_the_effect(SendReply, proposal)
    proposal_commit(proposal_id=proposal.pk)  # the retry
    proposal_commit(proposal_id=proposal.pk)  # a redelivered task

    assert len(mail.outbox) == 1
    assert mail.outbox[0].extra_headers["Message-ID"] == f"<aios-proposal-{proposal.pk}@aios>"
    assert Proposal.objects.get(pk=proposal.pk).status == "committed"
    assert Outbox.objects.get(proposal=proposal).done_at is not None


def test_a_refused_mail_is_not_recorded_as_sent_and_may_be_sent_again(
    settings, workspace, make_agent
):
    proposal = _reply_by_email(settings, workspace, make_agent)
    from django.core.mail.backends.locmem import EmailBackend

    real_send = EmailBackend.send_messages
    EmailBackend.send_messages = lambda self, messages: (_ for _ in ()).throw(
        ConnectionRefusedError("the mail server is down")
    )
    try:
        with pytest.raises(TransientError):
            proposal_commit(proposal_id=proposal.pk)
    finally:
        EmailBackend.send_messages = real_send
    proposal_commit(proposal_id=proposal.pk)

    assert len(mail.outbox) == 1
    assert Proposal.objects.get(pk=proposal.pk).status == "committed"


def test_cancelling_a_run_withdraws_its_pending_proposals(proposer, workspace, operator):
    run = run_start(
        agent=proposer,
        input={"effector": "core.webhook", "payload": WEBHOOK, "target": "crm"},
    )[0]
    receiver = Receiver()
    _endpoint(workspace, receiver)
    try:
        run = drive(run)
        proposal = Proposal.objects.get(run=run)
        assert proposal.status == "pending"

        run_cancel(run=Run.objects.get(pk=run.pk))

        withdrawn = Proposal.objects.get(pk=proposal.pk)
        assert withdrawn.status == "withdrawn"
        with pytest.raises(Conflict):
            proposal_approve(
                proposal=withdrawn,
                membership=operator.memberships.get(),
                shown_hash=withdrawn.payload_hash,
            )
    finally:
        receiver.close()
    assert receiver.requests == []


def test_a_decision_on_a_decided_proposal_is_a_409(client, proposer, operator):
    from tests.memory.test_api import Api

    proposal = _approved(proposer, effector="core.note", payload={"content": "x"})
    Proposal.objects.filter(pk=proposal.pk).update(payload_hash="0" * 64)

    api = Api(client, operator)
    approve = api.send("post", f"/proposals/{proposal.pk}/approve", {"payload_hash": "0" * 64})
    reject = api.send("post", f"/proposals/{proposal.pk}/reject", {"reason": "no"})

    assert approve.status_code == 409 and "decided already" in approve.json()["detail"]
    assert reject.status_code == 409 and "decided already" in reject.json()["detail"]


def _commit_dying_after_the_effect(effector_class, proposal) -> None:
    """A commit attempt whose effect happens, and whose worker then loses its connection
    before recording it."""
    dropped = ConnectionResetError("the worker's connection dropped before recording it")
    with effect_then(effector_class, dropped), pytest.raises(TransientError):
        proposal_commit(proposal_id=proposal.pk)


def _reply_by_email(settings, workspace, make_agent) -> Proposal:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    support = make_agent("demo.propose", slug="support", allowed_effectors=["catalog.send_reply"])
    message = _customer_message(workspace)
    return _approved(
        support,
        effector="catalog.send_reply",
        payload={"message_id": message.pk, "body": "It left today.", "tier": "template"},
    )


def _customer_message(workspace):
    from catalog.models import Message
    from catalog.services import store_connect

    connection = store_connect(
        workspace=workspace,
        shop_domain="mail-shop.myshopify.com",
        access_token="shpat_x",
        webhook_secrets=["a-webhook-secret-of-some-length"],
        actor=Actor.system("test"),
    )
    return Message.objects.create(
        workspace=workspace,
        connection=connection,
        external_id="m-1",
        customer_email="nina@example.com",
        subject="Where is my order?",
        body="Hello, where is my order #1016?",
    )
