"""The governance API. Thin handlers."""

from __future__ import annotations

from datetime import datetime

from ninja import Query, Router

from aios_site.accounts.auth import request_workspace
from aios_site.accounts.models import Role
from approvals import selectors
from approvals.audit import audit_verify
from approvals.schemas import AuditPage, VerifyOut

router = Router(tags=["audit"])


@router.get("/audit", response=AuditPage)
def audit_list(
    request,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0),
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
):
    """The workspace's audit log, newest first. `action` matches a
    prefix; `object_type` + `object_id` give one object's history."""
    membership = request_workspace(request, role=Role.VIEWER)
    entries = selectors.audit_list(
        workspace_id=membership.workspace_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        actor=actor,
        since=since,
        until=until,
    )
    return {"items": entries[offset : offset + limit], "count": entries.count()}


@router.get("/audit/verify", response=VerifyOut)
def audit_check(request):
    """Recomputes the workspace's hash chain; `first_bad` names the first broken entry."""
    membership = request_workspace(request, role=Role.VIEWER)
    return audit_verify(workspace_id=membership.workspace_id).as_dict()
