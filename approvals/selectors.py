"""Reads of governance records, always scoped to one workspace."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from approvals.models import AuditEntry, Proposal


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
    """Newest first, with what a card shows loaded in the same query."""
    proposals = Proposal.objects.filter(workspace_id=workspace_id).select_related(
        "agent", "decided_by"
    )
    if status:
        proposals = proposals.filter(status=status)
    if agent:
        proposals = proposals.filter(agent__slug=agent)
    if risk:
        proposals = proposals.filter(risk=risk)
    return proposals.order_by("-created_at", "-pk")
