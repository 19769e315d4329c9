"""Automation earned from history: after a person approved enough cards of one kind as the
agent wrote them, and never edited or rejected one, the board offers to let that kind go out
by itself; a rejection of a kind that goes out by itself offers to take the rule back.

A kind is the effector, and for a reply its intent and tier ("templated track_order
replies"). Accepting writes a policy rule before the catch-all, audited; a reply rule also
asks for the calibrated confidence, and the policy's gate still holds failed drafts and
risky messages whatever the rule says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.utils import timezone

from aios_site.core.actors import Actor
from aios_site.core.errors import Conflict
from approvals import policy
from approvals.audit import audit_record
from approvals.models import AuditEntry, Proposal

EARNED_AFTER = 10  # approvals as written, with no edit and no rejection of the kind
WINDOW_DAYS = 60
EARNED_PREFIX = "Earned: "
ACCEPTED = "policy.rule_earned"


@dataclass
class Suggestion:
    kind: dict[str, str]
    label: str
    approved: int = 0
    edited: int = 0
    rejected: int = 0
    withdraw: str = ""  # the earned rule to take back, for a withdrawal
    examples: list[int] = field(default_factory=list)
    # The least sure the classifier was on a card approved as written: the owner's own
    # evidence for how sure a reply of the kind must be to go out alone.
    least_sure: float | None = None

    @property
    def key(self) -> str:
        return "|".join(f"{k}={v}" for k, v in sorted(self.kind.items()))


def kind_of(proposal: Proposal) -> dict[str, str]:
    kind = {"effector": proposal.effector}
    if proposal.effector == "catalog.send_reply":
        payload = proposal.proposed_payload or {}
        kind.update(intent=str(payload.get("intent", "")), tier=str(payload.get("tier", "")))
    return kind


def label_of(kind: dict[str, str]) -> str:
    if kind["effector"] == "catalog.send_reply":
        tier = {"template": "templated", "remote": "drafted", "local": "drafted"}.get(
            kind.get("tier", ""), ""
        )
        intent = kind.get("intent", "").replace("_", " ")
        return f"{tier} replies about {intent}".strip()
    return f"{kind['effector']} proposals"


def suggestions(*, workspace_id: int, rules: list[dict[str, Any]]) -> list[Suggestion]:
    """What to offer now: kinds that earned a rule, then earned rules to take back."""
    records = _records(workspace_id)
    offers = [
        record
        for record in records.values()
        if record.approved >= EARNED_AFTER
        and not record.edited
        and not record.rejected
        and not _let_out_already(record, rules)
    ]
    return offers + _withdrawals(workspace_id, records, rules)


def _records(workspace_id: int) -> dict[str, Suggestion]:
    decided = Proposal.objects.filter(
        workspace_id=workspace_id,
        decided_by__isnull=False,
        decided_at__gte=timezone.now() - timedelta(days=WINDOW_DAYS),
    ).exclude(status__in=["pending", "withdrawn", "expired"])
    records: dict[str, Suggestion] = {}
    for proposal in decided.order_by("-decided_at")[:5000]:
        kind = kind_of(proposal)
        record = Suggestion(kind=kind, label=label_of(kind))
        record = records.setdefault(record.key, record)
        if proposal.status == "rejected":
            record.rejected += 1
        elif proposal.edited:
            record.edited += 1
        else:
            record.approved += 1
            if len(record.examples) < 3:
                record.examples.append(proposal.pk)
            confidence = (proposal.proposed_payload or {}).get("confidence")
            if isinstance(confidence, int | float):
                record.least_sure = min(record.least_sure or 1.0, float(confidence))
    return records


def _let_out_already(record: Suggestion, rules: list[dict[str, Any]]) -> bool:
    """A rule exists already that auto-approves a low-risk card of the kind as sure as the
    least sure one the owner approved as written."""
    sure = record.least_sure if record.least_sure is not None else 1.0
    facts = {**record.kind, "risk": "low", "confidence": sure, "checks_failed": 0}
    return policy.decide(rules, facts).decision == "auto_approve"


def _withdrawals(workspace_id, records, rules) -> list[Suggestion]:
    earned = [rule for rule in rules if rule["name"].startswith(EARNED_PREFIX)]
    found = []
    for rule in earned:
        accepted = (
            AuditEntry.objects.filter(
                workspace_id=workspace_id, action=ACCEPTED, object_id=rule["name"][:200]
            )
            .order_by("-created_at")
            .first()
        )
        if accepted is None:
            continue
        kind = (accepted.after or {}).get("kind") or {}
        rejected = Proposal.objects.filter(
            workspace_id=workspace_id,
            status="rejected",
            decided_by__isnull=False,
            decided_at__gt=accepted.created_at,
            effector=kind.get("effector", ""),
        )
        count = sum(1 for p in rejected if kind_of(p) == kind)
        if count:
            found.append(
                Suggestion(kind=kind, label=label_of(kind), rejected=count, withdraw=rule["name"])
            )
    return found


# -- accepting and withdrawing ------------------------------------------------------------------


def rule_for(kind: dict[str, str], least_sure: float | None = None) -> dict[str, Any]:
    """The rule for a kind. A reply's asks the classifier to be at least as sure as on the
    least sure card the owner approved as written (never below the calibrated threshold
    when there is no such figure), so the rule stays inside the evidence that earned it."""
    from agents.llm.intents import CONFIDENT

    if kind["effector"] == "catalog.send_reply":
        sure = round(least_sure, 2) if least_sure is not None else CONFIDENT
        conditions = [
            {"fact": "intent", "op": "==", "value": kind["intent"]},
            {"fact": "tier", "op": "==", "value": kind["tier"]},
            {"fact": "confidence", "op": ">=", "value": sure},
        ]
    else:
        conditions = [{"fact": "risk", "op": "==", "value": "low"}]
    return {
        "name": f"{EARNED_PREFIX}{label_of(kind)} go out by themselves"[:120],
        "effector": kind["effector"],
        "conditions": conditions,
        "decision": "auto_approve",
    }


def suggestion_accept(*, workspace, key: str, actor: Actor) -> dict[str, Any]:
    """Writes the rule a suggestion offers, before the catch-all; Conflict when it is not on
    offer (any more)."""
    from approvals.services import rules_for, rules_set

    rules = rules_for(workspace_id=workspace.pk)
    offer = next(
        (s for s in suggestions(workspace_id=workspace.pk, rules=rules) if s.key == key),
        None,
    )
    if offer is None or offer.withdraw:
        raise Conflict("this suggestion is no longer on offer")
    rule = rule_for(offer.kind, offer.least_sure)
    at = next((n for n, r in enumerate(rules) if r.get("effector") == "*"), len(rules))
    rules_set(workspace=workspace, rules=[*rules[:at], rule, *rules[at:]], actor=actor)
    audit_record(
        workspace_id=workspace.pk,
        actor=actor,
        action=ACCEPTED,
        object_type="policy",
        object_id=rule["name"],
        after={"kind": offer.kind, "rule": rule, "record": _record(offer)},
        reason=f"{offer.approved} approved as written, none edited or rejected",
    )
    return rule


def suggestion_withdraw(*, workspace, rule_name: str, actor: Actor) -> None:
    from approvals.services import rules_for, rules_set

    rules = rules_for(workspace_id=workspace.pk)
    kept = [rule for rule in rules if rule["name"] != rule_name]
    if len(kept) == len(rules) or not rule_name.startswith(EARNED_PREFIX):
        raise Conflict("no earned rule of that name")
    rules_set(workspace=workspace, rules=kept, actor=actor)


def _record(suggestion: Suggestion) -> dict[str, int]:
    return {
        "approved": suggestion.approved,
        "edited": suggestion.edited,
        "rejected": suggestion.rejected,
    }
