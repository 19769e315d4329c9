"""Proposals: policy on creation, the allow-list, approval bound to the hash, edits, rejection,
exactly-once commit, undo, expiry and the outcome resuming the run."""

from __future__ import annotations

import hashlib
import hmac
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from agents.models import Checkpoint, JournalEntry, Run
from agents.services import run_advance, run_start
from aios_site.core.errors import Conflict
from approvals.audit import Actor, audit_verify
from approvals.models import AuditEntry, Outbox, Proposal
from approvals.policy import DEFAULT_RULES, decide
from approvals.services import (
    proposal_commit,
    proposals_sweep,
    webhook_endpoint_save,
)
from memory.models import MemoryItem
from tests.agents.conftest import drive
from tests.fakes.receiver import Receiver
from tests.memory.test_api import Api

pytestmark = pytest.mark.django_db

SECRET = "a-webhook-secret-of-some-length"
OWNER = Actor("user", "alice@shop.example")


@pytest.fixture
def receiver(workspace):
    server = Receiver()
    webhook_endpoint_save(
        workspace=workspace, name="crm", url=server.url, secret=SECRET, actor=OWNER
    )
    yield server
    server.close()


def _propose(agent, effector, payload, target="t", **more) -> tuple[Run, Proposal]:
    run = run_start(
        agent=agent,
        input={"effector": effector, "payload": payload, "target": target, **more},
    )[0]
    run = drive(run)
    return run, Proposal.objects.filter(run=run).first()


def _commit_and_deliver(django_capture_on_commit_callbacks, proposal, run) -> Run:
    with django_capture_on_commit_callbacks(execute=True):
        proposal_commit(proposal_id=proposal.pk)
    return drive(Run.objects.get(pk=run.pk))


WEBHOOK = {"endpoint": "crm", "body": {"customer": "c-1", "tag": "vip"}}


# -- policy ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "decision", "role", "rule"),
    [
        (
            {
                "effector": "catalog.change_price",
                "risk": "high",
                "price": 8,
                "cost": 10,
                "price_change_pct": 20,
            },
            "deny",
            "operator",
            "Never sell below cost",
        ),
        (
            {
                "effector": "catalog.change_price",
                "risk": "medium",
                "price": 12,
                "cost": 10,
                "price_change_pct": 7.5,
            },
            "require_approval",
            "owner",
            "Price changes over 5% need the owner",
        ),
        (
            {
                "effector": "catalog.change_price",
                "risk": "low",
                "price": 12,
                "cost": 10,
                "price_change_pct": 2,
            },
            "require_approval",
            "operator",
            "Everything else waits for a person",
        ),
        (
            {
                "effector": "catalog.send_reply",
                "risk": "low",
                "tier": "template",
                "intent": "track_order",
                "confidence": 0.74,
            },
            "auto_approve",
            "operator",
            "Templated order-status replies go out by themselves",
        ),
        (  # the classifier below its calibrated threshold: a wrong template is too likely
            {
                "effector": "catalog.send_reply",
                "risk": "low",
                "tier": "template",
                "intent": "track_order",
                "confidence": 0.62,
            },
            "require_approval",
            "operator",
            "Everything else waits for a person",
        ),
        (  # read by the remote model alone: no calibrated confidence, a person decides
            {
                "effector": "catalog.send_reply",
                "risk": "low",
                "tier": "template",
                "intent": "track_order",
            },
            "require_approval",
            "operator",
            "Everything else waits for a person",
        ),
        (  # a complaint about a late order, however sure the classifier is
            {
                "effector": "catalog.send_reply",
                "risk": "medium",
                "risk_reasons": ["the customer is upset that the order is late"],
                "tier": "template",
                "intent": "track_order",
                "confidence": 0.9,
            },
            "require_approval",
            "operator",
            "Waits for a person: it is medium risk (the customer is upset that the order is late)",
        ),
        (
            {
                "effector": "catalog.send_reply",
                "risk": "low",
                "tier": "remote",
                "intent": "track_order",
            },
            "require_approval",
            "operator",
            "Everything else waits for a person",
        ),
        (
            {"effector": "core.note", "risk": "low"},
            "auto_approve",
            "operator",
            "Notes in memory are low risk",
        ),
        (
            {"effector": "core.webhook", "risk": "medium"},
            "require_approval",
            "operator",
            "Everything else waits for a person",
        ),
    ],
)
def test_the_default_rules_decide_as_a_shop_owner_expects(facts, decision, role, rule):
    verdict = decide(DEFAULT_RULES, facts)

    assert (verdict.decision, verdict.required_role, verdict.rule["name"]) == (
        decision,
        role,
        rule,
    )


def test_a_condition_on_a_missing_fact_does_not_hold():
    rules = [
        {
            "name": "cheap",
            "effector": "*",
            "decision": "deny",
            "conditions": [{"fact": "price", "op": "<", "value": 5}],
        }
    ]

    assert decide(rules, {"effector": "core.note", "risk": "low"}).decision == "require_approval"


def test_rules_are_replaced_by_the_owner_checked_and_audited(client, owner, operator):
    rules = [
        {
            "name": "Webhooks need the owner",
            "effector": "core.webhook",
            "decision": "require_approval",
            "required_role": "owner",
        }
    ]

    refused = Api(client, operator).send("put", "/policy-rules", {"rules": rules})
    bad = Api(client, owner).send(
        "put", "/policy-rules", {"rules": [{"name": "x", "decision": "maybe"}]}
    )
    saved = Api(client, owner).send("put", "/policy-rules", {"rules": rules})

    assert refused.status_code == 403
    assert bad.status_code == 400
    assert bad.json() == {
        "detail": "rule 1: decision must be one of auto_approve, require_approval, deny"
    }
    assert saved.json() == {"rules": [{**rules[0], "conditions": []}], "default": False}
    assert AuditEntry.objects.filter(action="policy.update").count() == 1


# -- creation -------------------------------------------------------------------------------


def test_a_low_risk_note_is_auto_approved_committed_and_the_run_finishes_with_it(
    proposer, django_capture_on_commit_callbacks
):
    run, proposal = _propose(proposer, "core.note", {"content": "Supplier calls on Mondays."})

    assert run.status == "waiting" and run.waiting_for["proposal"] == proposal.pk
    assert (proposal.status, proposal.decision) == ("approved", "auto_approve")
    assert proposal.decided_rule["name"] == "Notes in memory are low risk"
    done = _commit_and_deliver(django_capture_on_commit_callbacks, proposal, run)

    assert done.status == "succeeded"
    assert done.outcome["status"] == "committed"
    note = MemoryItem.objects.get(key=f"aios-proposal-{proposal.pk}")
    assert (note.kind, note.content, note.source_kind) == (
        "note",
        "Supplier calls on Mondays.",
        "run",
    )
    actions = list(AuditEntry.objects.order_by("seq").values_list("action", flat=True))
    assert actions[-4:] == [
        "proposal.create",
        "proposal.approve",
        "memory.write",
        "proposal.commit",
    ]
    assert audit_verify().ok


def test_an_effector_off_the_allow_list_fails_the_step_and_is_audited(make_agent):
    agent = make_agent("demo.propose", slug="narrow", allowed_effectors=["core.note"])

    run, proposal = _propose(agent, "core.webhook", WEBHOOK)

    assert run.status == "failed" and proposal is None
    refused = AuditEntry.objects.get(action="proposal.refused")
    assert refused.reason == "'core.webhook' is not on the agent's allow-list"


def test_a_retried_step_finds_its_proposal_instead_of_making_a_second(proposer, receiver):
    run, proposal = _propose(proposer, "core.webhook", WEBHOOK)
    # As if the worker died after the proposal was made but before the step committed.
    Checkpoint.objects.filter(run=run, seq=1).update(status="running", transition=None)
    Run.objects.filter(pk=run.pk).update(
        status="running",
        current_step="start",
        next_seq=1,
        waiting_for=None,
        lease_expires_at=timezone.now() - timedelta(minutes=5),
    )
    run_advance(run_id=run.pk)  # a message delivered again: its claim takes the run over

    again = drive(Run.objects.get(pk=run.pk))

    assert Proposal.objects.count() == 1
    assert again.status == "waiting" and again.waiting_for["proposal"] == proposal.pk
    assert Checkpoint.objects.filter(run=run, seq=1).count() == 2  # the step ran twice
    assert JournalEntry.objects.filter(run=run, kind="proposal").count() == 1  # one call


# -- approving ------------------------------------------------------------------------------


def test_a_webhook_waits_for_a_person_and_approval_sends_one_signed_request(
    client, operator, proposer, receiver, django_capture_on_commit_callbacks
):
    run, proposal = _propose(proposer, "core.webhook", WEBHOOK, rationale="VIP since 2021")
    api = Api(client, operator)
    shown = api.get(f"/proposals/{proposal.pk}").json()
    assert (shown["status"], shown["risk"], shown["rationale"]) == (
        "pending",
        "medium",
        "VIP since 2021",
    )
    assert shown["diff"] == [
        {"field": f"POST {receiver.url}", "before": None, "after": WEBHOOK["body"]}
    ]

    approved = api.send(
        "post", f"/proposals/{proposal.pk}/approve", {"payload_hash": shown["payload_hash"]}
    )
    again = api.send(
        "post", f"/proposals/{proposal.pk}/approve", {"payload_hash": shown["payload_hash"]}
    )
    done = _commit_and_deliver(django_capture_on_commit_callbacks, proposal, run)

    assert approved.status_code == 200 and again.status_code == 409  # decided already
    assert "decided already" in again.json()["detail"]  # and one commit was queued
    assert Proposal.objects.get().status == "committed"
    [request] = receiver.requests
    assert request["headers"]["idempotency-key"] == f"aios-proposal-{proposal.pk}"
    signature = hmac.new(SECRET.encode(), request["body"], hashlib.sha256).hexdigest()
    assert request["headers"]["x-aios-signature"] == f"sha256={signature}"
    assert done.outcome["status"] == "committed" and done.outcome["result"]["status"] == 200


def test_an_approval_for_a_payload_that_changed_is_refused_with_409(
    client, operator, proposer, receiver
):
    _, proposal = _propose(proposer, "core.webhook", WEBHOOK)

    response = Api(client, operator).send(
        "post", f"/proposals/{proposal.pk}/approve", {"payload_hash": "0" * 64}
    )

    assert response.status_code == 409
    assert response.json() == {
        "detail": "the proposal changed since it was shown: reload it and decide again"
    }
    assert Proposal.objects.get().status == "pending" and receiver.requests == []


def test_an_edited_payload_is_what_gets_committed(
    client, operator, proposer, receiver, django_capture_on_commit_callbacks
):
    run, proposal = _propose(proposer, "core.webhook", WEBHOOK)
    edited = {"endpoint": "crm", "body": {"customer": "c-1", "tag": "regular"}}

    response = Api(client, operator).send(
        "post",
        f"/proposals/{proposal.pk}/approve",
        {"payload_hash": proposal.payload_hash, "payload": edited},
    )
    done = _commit_and_deliver(django_capture_on_commit_callbacks, proposal, run)

    body = response.json()
    assert body["edited"] is True and body["payload"] == edited
    assert body["proposed_payload"] == WEBHOOK and body["payload_hash"] != proposal.payload_hash
    assert list(receiver.effects.values()) == [edited["body"]]
    assert done.outcome["payload"] == edited and done.outcome["edited"] is True
    assert AuditEntry.objects.filter(action="proposal.edit").count() == 1


def test_a_rejection_resumes_the_run_with_the_reason_and_sends_nothing(
    client, operator, proposer, receiver, django_capture_on_commit_callbacks
):
    run, proposal = _propose(proposer, "core.webhook", WEBHOOK)

    with django_capture_on_commit_callbacks(execute=True):
        Api(client, operator).send(
            "post", f"/proposals/{proposal.pk}/reject", {"reason": "not a VIP"}
        )
    done = drive(Run.objects.get(pk=run.pk))

    assert (done.outcome["status"], done.outcome["reason"]) == ("rejected", "not a VIP")
    assert receiver.requests == []


def test_viewers_cannot_decide_outsiders_cannot_see_and_owner_rules_bind_operators(
    client, viewer, outsider, operator, owner, proposer, receiver
):
    _, proposal = _propose(proposer, "core.webhook", WEBHOOK)
    body = {"payload_hash": proposal.payload_hash}

    assert (
        Api(client, viewer).send("post", f"/proposals/{proposal.pk}/approve", body).status_code
        == 403
    )
    assert Api(client, outsider).get(f"/proposals/{proposal.pk}").status_code == 404
    assert Api(client, outsider).get("/proposals").json() == {"items": [], "count": 0}
    Proposal.objects.filter(pk=proposal.pk).update(required_role="owner")
    needs_owner = Api(client, operator).send("post", f"/proposals/{proposal.pk}/approve", body)
    assert needs_owner.status_code == 403
    assert needs_owner.json() == {"detail": "this proposal needs the owner to decide"}
    assert (
        Api(client, owner).send("post", f"/proposals/{proposal.pk}/approve", body).json()["status"]
        == "approved"
    )


def test_bulk_approval_decides_each_against_its_shown_hash(client, operator, proposer, receiver):
    _, first = _propose(proposer, "core.webhook", WEBHOOK, target="a")
    _, second = _propose(proposer, "core.webhook", WEBHOOK, target="b")

    response = Api(client, operator).send(
        "post",
        "/proposals/bulk",
        {
            "action": "approve",
            "items": [
                {"id": first.pk, "payload_hash": first.payload_hash},
                {"id": second.pk, "payload_hash": "f" * 64},
            ],
        },
    )

    assert response.json() == {
        "action": "approve",
        "done": [first.pk],
        "skipped": [
            {
                "id": second.pk,
                "reason": "the proposal changed since it was shown: reload it and decide again",
            }
        ],
    }


# -- committing -----------------------------------------------------------------------------


def test_a_commit_repeated_after_a_crash_reaches_the_receiver_with_the_same_key(
    proposer, receiver, client, operator
):
    _, proposal = _propose(proposer, "core.webhook", WEBHOOK)
    Api(client, operator).send(
        "post", f"/proposals/{proposal.pk}/approve", {"payload_hash": proposal.payload_hash}
    )
    proposal_commit(proposal_id=proposal.pk)
    # A worker that sent the request and died before recording it: the lease lapses, another
    # worker commits again with the same key, and the receiver applies it once.
    Proposal.objects.filter(pk=proposal.pk).update(
        status="approved", lease_expires_at=timezone.now() - timedelta(minutes=5)
    )
    Outbox.objects.filter(proposal=proposal).update(done_at=None, result=None)  # not heard back
    proposal_commit(proposal_id=proposal.pk)

    keys = [r["headers"]["idempotency-key"] for r in receiver.requests]
    assert keys == [f"aios-proposal-{proposal.pk}"] * 2
    assert len(receiver.effects) == 1


def test_a_failing_endpoint_marks_the_proposal_failed_after_a_permanent_refusal(
    proposer, receiver, client, operator
):
    receiver.status = 422
    _, proposal = _propose(proposer, "core.webhook", WEBHOOK)
    Api(client, operator).send(
        "post", f"/proposals/{proposal.pk}/approve", {"payload_hash": proposal.payload_hash}
    )

    proposal_commit(proposal_id=proposal.pk)

    failed = Proposal.objects.get()
    assert failed.status == "failed" and "refused it: 422" in failed.error


@pytest.mark.django_db(transaction=True)
def test_two_operators_approving_at_once_commit_once(client, operator, owner, proposer, receiver):
    _, proposal = _propose(proposer, "core.webhook", WEBHOOK)
    from approvals.services import proposal_approve

    results = []

    def approve(user) -> None:
        membership = user.memberships.get()
        try:
            decided = proposal_approve(
                proposal=proposal, membership=membership, shown_hash=proposal.payload_hash
            )
            results.append(decided.status)
        except Conflict:
            results.append("decided already")
        connection.close()

    threads = [threading.Thread(target=approve, args=(u,)) for u in (operator, owner)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    proposal_commit(proposal_id=proposal.pk)
    proposal_commit(proposal_id=proposal.pk)

    assert sorted(results) == ["approved", "decided already"]
    assert AuditEntry.objects.filter(action="proposal.approve").count() == 1
    assert len(receiver.requests) == 1


def test_undo_takes_a_committed_note_back_and_is_audited(
    client, operator, proposer, django_capture_on_commit_callbacks
):
    run, proposal = _propose(proposer, "core.note", {"content": "Temporary note."})
    _commit_and_deliver(django_capture_on_commit_callbacks, proposal, run)

    response = Api(client, operator).send("post", f"/proposals/{proposal.pk}/undo")

    assert response.json()["status"] == "rolled_back"
    assert MemoryItem.objects.get(key=f"aios-proposal-{proposal.pk}").deleted_at is not None
    assert AuditEntry.objects.filter(action="proposal.undo").count() == 1
    again = Api(client, operator).send("post", f"/proposals/{proposal.pk}/undo")
    assert again.status_code == 409


def test_an_undecided_proposal_expires_and_its_run_hears_it(
    proposer, receiver, settings, django_capture_on_commit_callbacks
):
    run, proposal = _propose(proposer, "core.webhook", WEBHOOK)
    Proposal.objects.filter(pk=proposal.pk).update(created_at=timezone.now() - timedelta(days=4))

    with django_capture_on_commit_callbacks(execute=True):
        swept = proposals_sweep()
    done = drive(Run.objects.get(pk=run.pk))

    assert swept["expired"] == 1 and swept["delivered"] == 1
    assert done.outcome["status"] == "expired"
