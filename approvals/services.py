"""Proposals from creation to commit: policy, approval bound to the payload's hash, exactly-once
commit by a worker, rejection, undo, expiry, and the outcome delivered back to the run.

Every state change is a conditional UPDATE on the proposal's status, so two operators, two
tabs or a redelivered task can never take the same step twice; every one is audited.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from aios_site.accounts.models import Role
from aios_site.chaos import attempt_key, chaos_point
from aios_site.core import lease
from aios_site.core.actors import Actor
from aios_site.core.errors import (
    Conflict,
    LeaseLost,
    PermanentError,
    TransientError,
    describe,
    is_transient,
)
from aios_site.core.hashing import digest, plain
from aios_site.core.renewer import renewer
from aios_site.queues import send
from approvals import policy
from approvals.audit import audit_record
from approvals.edits import refuse_locked
from approvals.effectors import Found, get_effector
from approvals.events import proposal_changed
from approvals.models import (
    FINAL_STATUSES,
    PolicyRule,
    Proposal,
    ProposalOpened,
    ProposalStatus,
    RejectCategory,
)
from approvals.outcomes import minutes_defaults, review_seconds


def payload_hash(payload: dict[str, Any]) -> str:
    return digest(payload)


def _audit(proposal: Proposal, actor: Actor, action: str, **change) -> None:
    audit_record(
        workspace_id=proposal.workspace_id,
        actor=actor,
        action=f"proposal.{action}",
        object_type="proposal",
        object_id=proposal.pk,
        object_label=f"{proposal.effector} {proposal.target}"[:200],
        **change,
    )


def _state(proposal: Proposal) -> dict[str, Any]:
    return {"status": proposal.status, "payload_hash": proposal.payload_hash}


# -- rules ----------------------------------------------------------------------------------


def rules_for(*, workspace_id: int) -> list[dict[str, Any]]:
    stored = list(
        PolicyRule.objects.filter(workspace_id=workspace_id).values(
            "name", "effector", "conditions", "decision", "required_role"
        )
    )
    # A copy of the defaults: a caller that reorders its rules must not reorder them.
    return stored or copy.deepcopy(policy.DEFAULT_RULES)


@transaction.atomic
def rules_set(*, workspace, rules: Any, actor: Actor) -> list[dict[str, Any]]:
    clean = policy.rules_validate(rules)
    before = rules_for(workspace_id=workspace.pk)
    PolicyRule.objects.filter(workspace=workspace).delete()
    PolicyRule.objects.bulk_create(
        PolicyRule(workspace=workspace, position=n, **rule) for n, rule in enumerate(clean, 1)
    )
    audit_record(
        workspace_id=workspace.pk,
        actor=actor,
        action="policy.update",
        object_type="policy",
        object_id="rules",
        before=before,
        after=clean,
    )
    return rules_for(workspace_id=workspace.pk)


def _facts(effector, payload, *, agent, workspace, context=None) -> dict[str, Any]:
    """The facts the policy reads; with an eval's `context`, from it instead of the shop."""
    scalars = {
        f"payload.{name}": value
        for name, value in payload.items()
        if isinstance(value, str | int | float | bool)
    }
    if context is None:
        reported = effector.facts(payload, workspace=workspace)
    else:
        reported = effector.eval_facts(payload, workspace=workspace, context=context)
    # An effector that reads the risk from what it touches (a reply from the customer's own
    # words) reports it with its facts; others judge it from the payload alone.
    risk = reported.pop("risk", None) or effector.risk(payload)
    return {**scalars, **reported, "effector": effector.name, "risk": risk, "agent": agent.slug}


# -- creation -------------------------------------------------------------------------------


def proposal_create(
    *,
    run,
    seq: int,
    step: str,
    effector: str,
    target: str,
    payload: dict[str, Any],
    rationale: str = "",
    sources: list | None = None,
) -> Proposal:
    """A proposal from a run's step, decided by the workspace's policy at once. An effector
    off the agent's allow-list is refused (and the refusal audited, whatever the caller's
    transaction does next)."""
    agent, workspace = run.agent, run.workspace
    if effector not in (agent.allowed_effectors or []):
        refused = {"effector": effector, "target": target, "seq": seq}
        audit_record(
            workspace_id=workspace.pk,
            actor=Actor.of_run(run),
            action="proposal.refused",
            object_type="agent",
            object_id=agent.slug,
            after=refused,
            reason=f"{effector!r} is not on the agent's allow-list",
        )
        raise PermanentError(f"agent {agent.slug!r} may not propose {effector!r}")
    with transaction.atomic():
        return _proposal_create(run, seq, step, effector, target, payload, rationale, sources)


def proposal_propose(
    *, run, seq, step, effector, target, payload, rationale="", sources=None
) -> dict[str, Any]:
    """What `ctx.propose` does (plugged into the engine at start-up): makes the proposal, or
    finds the one an earlier attempt of the step made and died before journaling, and says
    where it stands."""
    try:
        proposal = proposal_create(
            run=run,
            seq=seq,
            step=step,
            effector=effector,
            target=target,
            payload=payload,
            rationale=rationale,
            sources=sources,
        )
    except IntegrityError:
        proposal = Proposal.objects.get(run=run, seq=seq, effector=effector, target=target[:300])
    return outcome(proposal)


def proposal_evaluate(*, run, effector, payload, context) -> dict[str, Any]:
    """What the policy would decide of a proposal an eval's run would make, with nothing
    made: plugged into the engine as `evaluate`. `context` is the eval item (the customer's
    message, for a reply), standing in for what the effector would read from the shop."""
    handler = get_effector(effector)
    if effector not in (run.agent.allowed_effectors or []):
        raise PermanentError(f"agent {run.agent.slug!r} may not propose {effector!r}")
    facts = _facts(handler, payload, agent=run.agent, workspace=run.workspace, context=context)
    verdict = policy.decide(rules_for(workspace_id=run.workspace_id), facts)
    return {
        "status": "evaluated",
        "decision": verdict.decision,
        "rule": verdict.rule.get("name", ""),
        "risk": facts["risk"],
        "risk_reasons": facts.get("risk_reasons", []),
        "facts": facts,
    }


def _proposal_create(run, seq, step, effector, target, payload, rationale, sources) -> Proposal:
    agent, workspace = run.agent, run.workspace
    handler = get_effector(effector)
    handler.validate(payload, workspace=workspace)
    facts = _facts(handler, payload, agent=agent, workspace=workspace)
    verdict = policy.decide(rules_for(workspace_id=workspace.pk), facts)
    proposal = Proposal.objects.create(
        workspace=workspace,
        agent=agent,
        run=run,
        seq=seq,
        step=step,
        effector=effector,
        target=target[:300],
        payload=payload,
        proposed_payload=payload,
        payload_hash=payload_hash(payload),
        diff=plain(handler.preview(payload, workspace=workspace)),
        risk=facts["risk"],
        rationale=rationale,
        sources=plain(sources or []),
        facts=plain(facts),
        decision=verdict.decision,
        decided_rule=plain(verdict.rule),
        required_role=verdict.required_role,
    )
    actor = Actor.of_run(run)
    proposal_changed(proposal, created=True)
    _audit(
        proposal,
        actor,
        "create",
        after={"payload": payload, "decision": verdict.decision},
        reason=f"rule: {verdict.rule['name']}",
    )
    if verdict.decision == "auto_approve":
        _decide(
            proposal,
            ProposalStatus.APPROVED,
            Actor.system("policy"),
            f"auto-approved by rule {verdict.rule['name']!r}",
        )
    elif verdict.decision == "deny":
        _decide(
            proposal,
            ProposalStatus.REJECTED,
            Actor.system("policy"),
            f"denied by rule {verdict.rule['name']!r}",
        )
    return proposal


def _decide(
    proposal: Proposal, status: str, actor: Actor, reason: str, user=None, category: str = ""
) -> None:
    """pending → approved or rejected, once (Conflict when someone else decided first); the
    proposal is refreshed to its new state. A person's decision records how long they spent
    on it (see `_review_seconds`)."""
    now = timezone.now()
    decided = Proposal.objects.filter(pk=proposal.pk, status=ProposalStatus.PENDING).update(
        status=status,
        decided_by=user,
        decided_at=now,
        reason=reason,
        reject_category=category,
        review_seconds=_review_seconds(proposal, user, now) if user else None,
    )
    if not decided:
        raise Conflict(f"proposal {proposal.pk} was decided already")
    before = _state(proposal)
    proposal.refresh_from_db()
    action = "approve" if status == ProposalStatus.APPROVED else "reject"
    _audit(proposal, actor, action, before=before, after=_state(proposal), reason=reason)
    proposal_changed(proposal)
    if status == ProposalStatus.APPROVED:
        transaction.on_commit(lambda: _commit_soon(proposal.pk))
    else:
        transaction.on_commit(lambda: proposal_deliver(proposal_id=proposal.pk))


def _review_seconds(proposal: Proposal, user, decided_at) -> int | None:
    """The person's time on this card, from when it was first shown to them, capped; None
    when it never was (a decision through the API)."""
    opened_at = (
        ProposalOpened.objects.filter(proposal=proposal, user=user)
        .values_list("opened_at", flat=True)
        .first()
    )
    if opened_at is None:
        return None
    return review_seconds(
        opened_at=opened_at,
        decided_at=decided_at,
        cap_seconds=settings.AIOS_REVIEW_CAP_MINUTES * 60,
    )


def proposals_open(*, membership, proposals) -> None:
    """Notes that the member turned to these cards (the board reports a card once it is on a
    visible screen while the person is using it, not when it was merely pushed there), for
    the pending ones they may decide: where the review time of their decision starts. One
    INSERT; a card attended to before keeps its first time."""
    opened_at = timezone.now()
    ProposalOpened.objects.bulk_create(
        [
            ProposalOpened(proposal=proposal, user_id=membership.user_id, opened_at=opened_at)
            for proposal in proposals
            if proposal.status == ProposalStatus.PENDING
            and membership.has_role(proposal.required_role)
        ],
        ignore_conflicts=True,
    )


def _commit_soon(proposal_id: int) -> None:
    from approvals.tasks import proposal_commit

    send(proposal_commit, proposal_id)  # aios_site/queues.py: the broker may be down


# -- deciding -------------------------------------------------------------------------------


def _check_shown(proposal: Proposal, shown_hash: str) -> None:
    if shown_hash != proposal.payload_hash:
        raise Conflict("the proposal changed since it was shown: reload it and decide again")


def _check_pending(proposal: Proposal) -> None:
    if proposal.status != ProposalStatus.PENDING:
        status = proposal.get_status_display().lower()
        raise Conflict(f"this proposal was decided already: it is {status}")


def _check_role(proposal: Proposal, membership) -> None:
    if not membership.has_role(proposal.required_role):
        raise PermissionDenied(f"this proposal needs the {proposal.required_role} to decide")


@transaction.atomic
def proposal_approve(
    *, proposal: Proposal, membership, shown_hash: str, payload: dict[str, Any] | None = None
) -> Proposal:
    """Approves what the person saw (`shown_hash`), or their edit of it (checked and decided
    by the policy again). A proposal decided already is a Conflict (409): a double click, a
    second tab or a second operator commits once, and hears that it was decided."""
    proposal = Proposal.objects.select_for_update().get(pk=proposal.pk)
    _check_pending(proposal)
    _check_role(proposal, membership)
    _check_shown(proposal, shown_hash)
    if payload is not None and payload_hash(payload) != proposal.payload_hash:
        _apply_edit(proposal, payload, membership)
    _decide(
        proposal,
        ProposalStatus.APPROVED,
        Actor.of_user(membership.user),
        "approved",
        user=membership.user,
    )
    return proposal


def _apply_edit(proposal: Proposal, payload: dict[str, Any], membership) -> None:
    """An edit changes only what the effector lets a person change (approvals/edits.py), and
    is then checked and decided like a new proposal."""
    handler = get_effector(proposal.effector)
    editable = handler.edits(proposal.payload, workspace=proposal.workspace)
    refuse_locked(editable, proposal.payload, payload)
    handler.validate(payload, workspace=proposal.workspace)
    facts = _facts(handler, payload, agent=proposal.agent, workspace=proposal.workspace)
    verdict = policy.decide(rules_for(workspace_id=proposal.workspace_id), facts)
    if verdict.decision == "deny":
        raise Conflict(f"the edited payload is denied by rule {verdict.rule['name']!r}")
    before = {"payload": proposal.payload}
    proposal.payload, proposal.payload_hash, proposal.edited = payload, payload_hash(payload), True
    proposal.diff = plain(handler.preview(payload, workspace=proposal.workspace))
    proposal.facts, proposal.risk = plain(facts), facts["risk"]
    proposal.decided_rule, proposal.required_role = plain(verdict.rule), verdict.required_role
    _check_role(proposal, membership)  # an edit can raise the bar (a bigger price change)
    proposal.save(
        update_fields=[
            "payload",
            "payload_hash",
            "edited",
            "diff",
            "facts",
            "risk",
            "decided_rule",
            "required_role",
        ]
    )
    _audit(
        proposal, Actor.of_user(membership.user), "edit", before=before, after={"payload": payload}
    )


def reject_category(value: str | None) -> str:
    """A rejection's category as given (blank: other); ValidationError for an unknown one."""
    if not value:
        return RejectCategory.OTHER
    if value not in RejectCategory.values:
        known = ", ".join(RejectCategory.values)
        raise ValidationError(f"unknown rejection category {value!r} (one of {known})")
    return value


@transaction.atomic
def proposal_reject(
    *, proposal: Proposal, membership, reason: str, category: str = RejectCategory.OTHER
) -> Proposal:
    category = reject_category(category)
    proposal = Proposal.objects.select_for_update().get(pk=proposal.pk)
    _check_pending(proposal)
    _check_role(proposal, membership)
    _decide(
        proposal,
        ProposalStatus.REJECTED,
        Actor.of_user(membership.user),
        reason or "rejected",
        user=membership.user,
        category=category,
    )
    return proposal


def proposal_bulk(
    *,
    membership,
    action: str,
    items: list[tuple[int, str]],
    reason: str = "",
    category: str = RejectCategory.OTHER,
):
    """Decides many proposals of the membership's workspace, each against the hash shown. One
    look at the board decided them together, so its review time is shared out among them."""
    category = reject_category(category)
    started = timezone.now()
    done, skipped, reviewed = [], [], []
    for proposal_id, shown_hash in items:
        proposal = Proposal.objects.filter(workspace_id=membership.workspace_id, pk=proposal_id)
        proposal = proposal.first()
        if proposal is None:
            skipped.append({"id": proposal_id, "reason": "not found"})
            continue
        try:
            if action == "approve":
                decided = proposal_approve(
                    proposal=proposal, membership=membership, shown_hash=shown_hash
                )
            else:
                _check_shown(proposal, shown_hash)
                decided = proposal_reject(
                    proposal=proposal, membership=membership, reason=reason, category=category
                )
        except (Conflict, PermissionDenied, PermanentError) as error:
            skipped.append({"id": proposal_id, "reason": str(error)})
            continue
        done.append(decided.pk)
        if decided.decided_by_id == membership.user_id and decided.decided_at >= started:
            reviewed.append(decided.pk)  # decided now, not before
    if len(reviewed) > 1:
        Proposal.objects.filter(pk__in=reviewed, review_seconds__isnull=False).update(
            review_seconds=F("review_seconds") / len(reviewed)
        )
    return done, skipped


# -- committing -----------------------------------------------------------------------------


def commit_lease() -> lease.LeaseKind:
    """A commit is leased work (aios_site/core/lease.py): claimed with a fencing token,
    renewed while the effector runs, at most AIOS_COMMIT_MAX_ATTEMPTS claims in all."""
    return lease.LeaseKind(
        name="proposal commit",
        model=Proposal,
        seconds=settings.AIOS_LEASE_SECONDS,
        max_attempts=settings.AIOS_COMMIT_MAX_ATTEMPTS,
        claimable=Q(status=ProposalStatus.APPROVED),
        on_exhausted=_commit_gave_up,
        on_expired=_commit_soon,
    )


def proposal_commit(*, proposal_id: int) -> None:
    """Applies an approved proposal through its effector, under the commit lease. A transient
    failure lets go of the lease and is raised for the task to retry (same idempotency key)
    while attempts are left; a permanent or unexpected one marks it failed, with the error,
    as does running out of attempts. Whatever a holder that lost its lease (paused, too slow)
    would still write is fenced off, and its outbound writes are refused before they leave
    (`lease.guard`)."""
    with lease.held(commit_lease(), proposal_id) as held:
        if held is None:
            return  # done already, another worker holds it, or no attempts are left
        proposal = Proposal.objects.select_related("workspace", "run__agent").get(pk=proposal_id)
        try:
            result = _apply(proposal, held)
        except LeaseLost:
            return  # taken over: the new holder carries on, nothing of ours is written
        except Exception as error:
            if not is_transient(error):
                _finish(proposal, held, ProposalStatus.FAILED, error=describe(error))
                return
            if held.attempt >= held.kind.max_attempts:
                _give_up(proposal, held, describe(error))
                return
            held.release(error=describe(error)[:2000])
            raise TransientError(describe(error)) from error
        chaos_point("during_effector_commit")  # applied outside, not yet recorded here
        _finish(proposal, held, ProposalStatus.COMMITTED, result=plain(result))


def _apply(proposal: Proposal, held: lease.Lease) -> Any:
    handler = get_effector(proposal.effector)
    if proposal.before_image is None:
        # Durably, before the first write: a later attempt, after an effect it cannot see,
        # must not take the changed value for what was there (undo restores this).
        image = handler.before_image(proposal.payload, workspace=proposal.workspace)
        if image is not None:
            if not held.write(before_image=plain(image)):
                raise LeaseLost(f"proposal {proposal.pk} was taken over")
            proposal.before_image = plain(image)
    return handler.commit(
        proposal.payload,
        attempt_key(proposal.idempotency_key),
        workspace=proposal.workspace,
        proposal=proposal,
    )


def _commit_gave_up(held: lease.Lease) -> bool:
    """The sweep found a commit with no attempts left whose last holder is gone. False when
    the change was found applied (see `_give_up`)."""
    proposal = Proposal.objects.select_related("workspace").get(pk=held.pk)
    held.keep_renewed()  # the read-back may take a while
    try:
        with lease.acting(held):
            return not _give_up(proposal, held, proposal.error)
    finally:
        renewer().drop(held.key)


def _give_up(proposal: Proposal, held: lease.Lease, last_error: str) -> bool:
    """The attempts ran out. One of them may have applied the change and died before it
    was recorded (a worker killed or paused right after the shop answered), so the effector
    looks at its target first: a change found in place is recorded as committed, and only
    one found absent as "failed, nothing applied"; when it cannot tell, the card says so.
    True when it was found applied."""
    try:
        found = get_effector(proposal.effector).confirm(proposal, workspace=proposal.workspace)
    except LeaseLost:
        return False
    except Exception as error:  # the read-back failing is no answer either way
        found = Found(None, detail=f"the read-back failed: {describe(error)}")
    if found.applied:
        _finish(proposal, held, ProposalStatus.COMMITTED, result=plain(found.result))
        return True
    attempts = Proposal.objects.values_list("lease_attempts", flat=True).get(pk=proposal.pk)
    message = f"gave up after {attempts} attempts"
    if last_error:
        message += f": {last_error}"
    if found.applied is False:
        message += f"; nothing was applied ({found.detail or 'checked at the target'})"
    else:
        message += f"; it may have been applied: check before trying again ({found.detail})"
    _finish(proposal, held, ProposalStatus.FAILED, error=message)
    return False


@transaction.atomic
def _finish(
    proposal: Proposal, held: lease.Lease, status: str, *, result=None, error: str = ""
) -> bool:
    """Records the outcome, only while `held` is the current lease (fenced), and lets go."""
    done = (
        held.fenced()
        .filter(status=ProposalStatus.APPROVED)
        .update(
            status=status,
            result=result,
            error=error[:2000],
            committed_at=timezone.now() if status == ProposalStatus.COMMITTED else None,
            lease_expires_at=None,
        )
    )
    if not done:
        return False
    action = "commit" if status == ProposalStatus.COMMITTED else "commit_failed"
    proposal.status, proposal.result, proposal.error = status, result, error[:2000]
    _audit(
        proposal,
        Actor.system(f"effector {proposal.effector}"),
        action,
        before={"status": ProposalStatus.APPROVED},
        after={"status": status, "result": result},
        reason=error,
    )
    proposal_changed(proposal)
    transaction.on_commit(lambda: proposal_deliver(proposal_id=proposal.pk))
    return True


@transaction.atomic
def proposal_undo(*, proposal: Proposal, membership) -> Proposal:
    """Takes a committed change back through its effector, to what was there before the
    first attempt (`before_image`); audited as a rollback."""
    proposal = Proposal.objects.select_for_update().get(pk=proposal.pk)
    if proposal.status != ProposalStatus.COMMITTED:
        raise Conflict(f"proposal {proposal.pk} is {proposal.status}, not committed")
    _check_role(proposal, membership)
    undone = get_effector(proposal.effector).undo(
        proposal.result or {}, workspace=proposal.workspace, proposal=proposal
    )
    proposal.status = ProposalStatus.ROLLED_BACK
    proposal.save(update_fields=["status"])
    proposal_changed(proposal)
    _audit(
        proposal,
        Actor.of_user(membership.user),
        "undo",
        before={"status": "committed", "result": proposal.result},
        after={"status": "rolled_back", "undo": plain(undone)},
    )
    return proposal


def proposals_withdraw(*, run_id: int) -> int:
    """A cancelled run's pending proposals are withdrawn: nobody can approve them any more."""
    pending = Proposal.objects.filter(run_id=run_id, status=ProposalStatus.PENDING)
    return _close_pending(
        pending,
        ProposalStatus.WITHDRAWN,
        Actor.system("cancellation"),
        "withdraw",
        "withdrawn: its run was cancelled",
        delivered=True,  # the run is over: there is nobody to tell
    )


def _close_pending(pending, status: str, actor: Actor, action: str, reason: str, **fields) -> int:
    """Closes each proposal of `pending` that is still pending, without a person's decision
    (its expiry, its run's cancellation): once each, audited and shown on the board."""
    closed = 0
    for proposal in pending.select_related("run__agent"):
        with transaction.atomic():
            if Proposal.objects.filter(pk=proposal.pk, status=ProposalStatus.PENDING).update(
                status=status, decided_at=timezone.now(), reason=reason, **fields
            ):
                proposal.status = status
                before, after = {"status": ProposalStatus.PENDING}, {"status": status}
                _audit(proposal, actor, action, before=before, after=after, reason=reason)
                proposal_changed(proposal)
                closed += 1
    return closed


# -- the run hears the outcome -------------------------------------------------------------


def outcome(proposal: Proposal) -> dict[str, Any]:
    """What lands in the run's state when the proposal is decided and done."""
    return {
        "proposal": proposal.pk,
        "status": proposal.status,
        "payload": proposal.payload,
        "edited": proposal.edited,
        "reason": proposal.reason,
        "result": proposal.result,
        "error": proposal.error,
    }


def proposal_deliver(*, proposal_id: int) -> bool:
    """Resumes the run waiting for this proposal, if it waits for it and the proposal is
    over; the sweep calls it again for any that could not be delivered yet."""
    from agents.models import RunStatus
    from agents.services import run_resume

    with transaction.atomic():
        proposal = (
            Proposal.objects.select_for_update(of=("self",))
            .select_related("run")
            .get(pk=proposal_id)
        )
        run = proposal.run
        if proposal.delivered or not proposal.is_final or run is None:
            return False
        waiting = run.waiting_for or {}
        if run.status != RunStatus.WAITING or waiting.get("proposal") != proposal.pk:
            return False
        try:
            run_resume(run=run, kind="proposal", data=outcome(proposal))
        except Conflict:
            return False
        Proposal.objects.filter(pk=proposal.pk).update(delivered=True)
    return True


def proposals_sweep() -> dict[str, int]:
    """Expires old pending proposals, re-queues commits that stalled, delivers outcomes."""
    now = timezone.now()
    cutoff = now - timedelta(hours=settings.AIOS_PROPOSAL_TTL_HOURS)
    old = Proposal.objects.filter(status=ProposalStatus.PENDING, created_at__lt=cutoff)
    expired = _close_pending(
        old, ProposalStatus.EXPIRED, Actor.system("expiry"), "expire", "expired"
    )
    # A commit whose message was lost (never claimed) or whose holder let its lease run out
    # (dead, paused, hung) is queued again; one with no attempts left is read back at its
    # target and marked committed (found applied) or failed.
    lost = Q(decided_at__lt=now - timedelta(seconds=settings.AIOS_LEASE_SECONDS))
    commits = lease.expired_sweep(commit_lease(), unclaimed=lost)
    undelivered = Proposal.objects.filter(
        Q(status__in=FINAL_STATUSES), delivered=False, run__status="waiting"
    ).values_list("pk", flat=True)
    delivered = sum(proposal_deliver(proposal_id=pk) for pk in undelivered)
    return {
        "expired": expired,
        "requeued": commits["again"],
        "gave_up": commits["gave_up"],
        "found_applied": commits["found_done"],
        "delivered": delivered,
    }


# -- webhook endpoints ---------------------------------------------------------------------


@transaction.atomic
def webhook_endpoint_save(
    *, workspace, name: str, url: str, secret: str, actor: Actor, allow_private: bool | None = None
):
    """Saves an outbound endpoint. The server posts to it: a public address unless the
    settings allow others (`allow_private`: a URL the system made, the demo's simulator)."""
    from django.core.validators import URLValidator

    from aios_site import netguard
    from approvals.models import WebhookEndpoint

    URLValidator(schemes=["http", "https"])(url)
    netguard.validate_url(url, field_name="url", allow_private=allow_private)
    if len(secret) < 16:
        raise ValidationError("the secret needs at least 16 characters")
    endpoint = WebhookEndpoint.objects.filter(workspace=workspace, name=name).first()
    before = {"url": endpoint.url} if endpoint else None
    endpoint = endpoint or WebhookEndpoint(workspace=workspace, name=name)
    endpoint.url, endpoint.secret = url, secret
    endpoint.system_made = bool(allow_private)
    endpoint.full_clean(exclude=["workspace", "secret_encrypted"])
    endpoint.save()
    audit_record(
        workspace_id=workspace.pk,
        actor=actor,
        action="webhook_endpoint.save",
        object_type="webhook_endpoint",
        object_id=name,
        before=before,
        after={"url": url, "secret_changed": True},
    )
    return endpoint


# -- what the agents' work is worth ----------------------------------------------------------

MAX_OUTCOME_MINUTES = 600


@transaction.atomic
def outcome_minutes_set(*, membership, minutes: dict[str, Any]) -> dict[str, float]:
    """Replaces the workspace's own figures for the minutes of a person's work that one
    outcome of an effector or pipeline replaces (owners). A name left out, blank or None
    goes back to the class's figure. Audited."""
    if not membership.has_role(Role.OWNER):
        raise PermissionDenied("only an owner changes what the agents' work is worth")
    defaults = minutes_defaults()
    clean = {}
    for name, value in minutes.items():
        if name not in defaults:
            raise ValidationError(f"{name}: no effector or pipeline has this name")
        if value is not None and value != "":
            clean[name] = _minutes(name, value)
    workspace = membership.workspace
    before = workspace.outcome_minutes
    workspace.outcome_minutes = dict(sorted(clean.items()))
    workspace.save(update_fields=["outcome_minutes"])
    audit_record(
        workspace_id=workspace.pk,
        actor=Actor.of_user(membership.user),
        action="outcome_minutes.update",
        object_type="workspace",
        object_id=workspace.slug,
        before=before,
        after=workspace.outcome_minutes,
    )
    return workspace.outcome_minutes


def _minutes(name: str, value: Any) -> float:
    try:
        minutes = float(value)
    except (TypeError, ValueError) as error:
        raise ValidationError(f"{name}: {value!r} is not a number of minutes") from error
    if isinstance(value, bool) or not 0 <= minutes <= MAX_OUTCOME_MINUTES:  # NaN fails too
        raise ValidationError(f"{name}: minutes go from 0 to {MAX_OUTCOME_MINUTES}")
    return round(minutes, 1)
