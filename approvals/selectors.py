"""Reads of governance records, always scoped to one workspace."""

from __future__ import annotations

import fnmatch
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from aios_site.core.errors import PermanentError
from aios_site.humanize import writer_words
from approvals import policy
from approvals.models import AuditEntry, Proposal
from approvals.targets import target_names


def audit_list(
    *,
    workspace_id: int,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEntry]:
    """Newest first. `action` matches a prefix ("memory." for every memory action)."""
    entries = AuditEntry.objects.filter(workspace_id=workspace_id)
    if action:
        entries = entries.filter(action__startswith=action)
    if object_type:
        entries = entries.filter(object_type=object_type)
    if object_id:
        entries = entries.filter(object_id=object_id)
    if actor:
        entries = entries.filter(actor_label__icontains=actor)
    if since:
        entries = entries.filter(created_at__gte=since)
    if until:
        entries = entries.filter(created_at__lt=until)
    return entries.order_by("-seq")


def audit_actions(*, workspace_id: int) -> list[str]:
    return list(
        AuditEntry.objects.filter(workspace_id=workspace_id)
        .order_by("action")
        .values_list("action", flat=True)
        .distinct()
    )


def proposal_list(
    *,
    workspace_id: int,
    status: str | None = None,
    agent: str | None = None,
    risk: str | None = None,
) -> QuerySet[Proposal]:
    """Newest first."""
    proposals = _proposals(workspace_id=workspace_id, agent=agent, risk=risk)
    if status:
        proposals = proposals.filter(status=status)
    return proposals.order_by("-created_at", "-pk")


def _proposals(*, workspace_id: int, agent: str | None, risk: str | None) -> QuerySet[Proposal]:
    """A workspace's proposals, of one agent or risk if asked, with what a card or the API
    shows of them loaded in the same query."""
    proposals = Proposal.objects.filter(workspace_id=workspace_id).select_related(
        "agent", "decided_by", "workspace"
    )
    if agent:
        proposals = proposals.filter(agent__slug=agent)
    if risk:
        proposals = proposals.filter(risk=risk)
    return proposals


# -- the board --------------------------------------------------------------------------------

BOARD_TABS = ["pending", "approved", "committed", "rejected"]
# What each tab shows: "committed" also holds the changes undone later, "rejected" the ones
# that expired, failed or were withdrawn, so nothing decided disappears from the board.
TAB_STATUSES = {
    "pending": ["pending"],
    "approved": ["approved"],
    "committed": ["committed", "rolled_back"],
    "rejected": ["rejected", "expired", "failed", "withdrawn"],
}
RISK_ORDER = {"high": 0, "medium": 1, "low": 2}


TAB_LABELS = {
    "pending": "Waiting",
    "approved": "On their way",
    "committed": "Done",
    "rejected": "Not sent",
}


def board_counts(*, workspace_id: int) -> dict[str, int]:
    """How many proposals each tab holds, in one query."""
    from django.db.models import Count, Q

    counts = Proposal.objects.filter(workspace_id=workspace_id).aggregate(
        **{
            tab: Count("pk", filter=Q(status__in=statuses))
            for tab, statuses in TAB_STATUSES.items()
        }
    )
    return counts


def board_tabs(*, workspace_id: int) -> list[dict[str, Any]]:
    """The board's tabs in order, each with its label and how many cards it holds."""
    counts = board_counts(workspace_id=workspace_id)
    return [{"tab": tab, "label": TAB_LABELS[tab], "count": counts[tab]} for tab in BOARD_TABS]


def board_list(
    *, workspace_id: int, tab: str, agent: str | None = None, risk: str | None = None
) -> QuerySet[Proposal]:
    """A tab's proposals grouped by agent, then risk (high first), newest first in a group."""
    from django.db.models import Case, IntegerField, Value, When

    risk_rank = Case(
        *[When(risk=name, then=Value(rank)) for name, rank in RISK_ORDER.items()],
        output_field=IntegerField(),
    )
    proposals = _proposals(workspace_id=workspace_id, agent=agent, risk=risk).filter(
        status__in=TAB_STATUSES[tab]
    )
    return proposals.annotate(risk_rank=risk_rank).order_by(
        "agent__slug", "risk_rank", "-created_at", "-pk"
    )


def board_cards(*, proposals=None, proposal_ids: list[int] | None = None) -> list[dict]:
    """What a card shows: the proposal, and the model calls of the step that made it (tier,
    model, cost), fetched for all the cards in one query."""
    from agents.models import JournalEntry, JournalKind

    if proposals is None:
        proposals = Proposal.objects.filter(pk__in=proposal_ids or []).select_related(
            "agent", "decided_by", "workspace"
        )
    proposals = list(proposals)
    calls: dict[tuple[int, int], list[dict]] = {}
    steps = {(p.run_id, p.seq) for p in proposals if p.run_id}
    if steps:
        entries = JournalEntry.objects.filter(
            run_id__in={run for run, _ in steps}, kind=JournalKind.MODEL, ok=True
        ).values("run_id", "seq", "response__tier", "response__model", "cost")
        for entry in entries:
            calls.setdefault((entry["run_id"], entry["seq"]), []).append(entry)
    names = _target_names(proposals)
    return [_card(p, calls.get((p.run_id, p.seq), []), names) for p in proposals]


def _target_names(proposals: list[Proposal]) -> dict[tuple[int, str], str]:
    """{(workspace id, target): what a person calls it}, one query per kind of target."""
    by_workspace: dict[int, set[str]] = {}
    for proposal in proposals:
        by_workspace.setdefault(proposal.workspace_id, set()).add(proposal.target)
    return {
        (workspace_id, target): name
        for workspace_id, targets in by_workspace.items()
        for target, name in target_names(workspace_id, targets).items()
    }


def _card(proposal: Proposal, calls: list[dict], names: dict[tuple[int, str], str]) -> dict:
    from memory.selectors import word_diff

    changes = []
    for change in proposal.diff:
        before, after = change.get("before"), change.get("after")
        text = isinstance(after, str) and isinstance(before, str | None)
        changes.append(
            {
                "field": change.get("field", ""),
                "context": bool(change.get("context")),
                "text": text,
                "pieces": word_diff(before or "", after) if text and before else None,
                "before": before,
                "after": after,
            }
        )
    name = names.get((proposal.workspace_id, proposal.target), "")
    effector = _effector(proposal.effector)
    return {
        "proposal": proposal,
        "target_name": name,
        "headline": effector.headline(proposal.payload, name=name, facts=proposal.facts or {})
        if effector
        else proposal.effector,
        "status_words": STATUS_WORDS.get(proposal.status, proposal.status),
        "decision_words": decision_words(proposal),
        "changes": changes,
        "models": [
            {
                "tier": c["response__tier"],
                "model": c["response__model"],
                "words": writer_words(c["response__tier"], c["response__model"]),
            }
            for c in calls
        ],
        "cost": sum((c["cost"] for c in calls), start=0),
        "editable": _editable(proposal, effector),
        "can_undo": bool(effector and effector.can_undo),
    }


# A card's state as the owner reads it.
STATUS_WORDS = {
    "pending": "Waiting",
    "approved": "Approved, on its way",
    "committed": "Done",
    "rolled_back": "Undone",
    "rejected": "Rejected",
    "expired": "Expired",
    "failed": "Failed",
    "withdrawn": "Withdrawn",
}
ROLE_WORDS = {"owner": "the owner", "operator": "an operator or the owner", "viewer": "anyone"}


def decision_words(proposal: Proposal) -> str:
    """Who decides, or who decided and how: "Waits for an operator or the owner (rule “…”)",
    "Approved by olivia@…", "Went out by itself under the rule “…”"."""
    rule = (proposal.decided_rule or {}).get("name", "")
    under = f" (rule “{rule}”)" if rule else ""
    person = proposal.decided_by.get_username() if proposal.decided_by_id else ""
    if proposal.status == "pending":
        return f"Waits for {ROLE_WORDS.get(proposal.required_role, proposal.required_role)}{under}"
    if proposal.status == "expired":
        return "Expired: nobody decided in time"
    if proposal.status == "withdrawn":
        return "Withdrawn: its run was stopped before anyone decided"
    verb = "Rejected" if proposal.status == "rejected" else "Approved"
    if person:
        return f"{verb} by {person}"
    if verb == "Rejected":
        return f"Refused by the rule “{rule}”" if rule else "Refused"
    return f"Went out by itself under the rule “{rule}”" if rule else "Approved"


def _effector(name: str):
    from approvals.effectors import get_effector

    try:
        return get_effector(name)
    except PermanentError:
        return None


def _editable(proposal: Proposal, effector) -> list:
    """What a person may change on the card; nothing when the target is gone (the card can
    still be rejected, and approving it fails with the reason)."""
    if effector is None or proposal.status != "pending":
        return []
    try:
        return effector.edits(
            proposal.payload, workspace=proposal.workspace, facts=proposal.facts or {}
        )
    except PermanentError:
        return []


def rule_measures(*, workspace_id: int, rules: list[dict]) -> dict[str, Any] | None:
    """Each auto-approving rule (in `rules`' order; None for the others), alone, over the
    workspace's latest finished eval: how many of its messages it would have let out without
    a person, and how many of those were right. Rules are re-run on the facts the eval
    recorded, so a rule edited since is measured as it is now. None when the workspace has
    no finished eval with those facts."""
    from agents.models import EvalRun

    latest = (
        EvalRun.objects.filter(workspace_id=workspace_id, status="done")
        .order_by("-finished_at", "-pk")
        .first()
    )
    results = [r for r in latest.results.all() if r.facts] if latest else []
    if not results:
        return None
    measured = []
    effectors = {r.facts.get("effector", "") for r in results}
    for rule in rules:
        glob = rule.get("effector", "*")
        if rule.get("decision") != "auto_approve" or not any(
            fnmatch.fnmatchcase(name, glob) for name in effectors
        ):  # the eval has no card of the rule's kind: nothing to measure it on
            measured.append(None)
            continue
        sent = [r for r in results if policy.decide([rule], r.facts).decision == "auto_approve"]
        right = sum(1 for r in sent if r.right_to_send)
        measured.append({"sent": len(sent), "right": right})
    return {"eval": latest, "items": len(results), "rules": measured}
