"""The governance API. Thin handlers."""

from __future__ import annotations

from datetime import date, datetime

from ninja import Query, Router

from agents.access import access_agent
from aios_site.accounts.auth import request_workspace
from aios_site.accounts.models import Role
from aios_site.paging import offset_param
from approvals import outcomes, selectors, services
from approvals.access import access_proposal
from approvals.audit import Actor, audit_readable, audit_verify
from approvals.models import PolicyRule, WebhookEndpoint
from approvals.schemas import (
    ApproveIn,
    AuditPage,
    OutcomesOut,
    ProposalBulkIn,
    ProposalBulkOut,
    ProposalOut,
    ProposalPage,
    RejectIn,
    RulesIn,
    RulesOut,
    VerifyOut,
    WebhookEndpointIn,
    WebhookEndpointOut,
)

router = Router(tags=["audit"])


@router.get("/audit", response=AuditPage)
def audit_list(
    request,
    limit: int = Query(100, ge=1, le=500),
    offset: int = offset_param(),
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
    return {"items": audit_readable(entries[offset : offset + limit]), "count": entries.count()}


@router.get("/audit/verify", response=VerifyOut)
def audit_check(request):
    """Recomputes the workspace's hash chain; `first_bad` names the first broken entry."""
    membership = request_workspace(request, role=Role.VIEWER)
    return audit_verify(workspace_id=membership.workspace_id).as_dict()


# -- proposals ------------------------------------------------------------------------------


@router.get("/proposals", response=ProposalPage, tags=["proposals"])
def proposal_list(
    request,
    status: str | None = None,
    agent: str | None = None,
    risk: str | None = None,
    limit: int = Query(50, ge=1, le=200),
    offset: int = offset_param(),
):
    membership = request_workspace(request)
    proposals = selectors.proposal_list(
        workspace_id=membership.workspace_id, status=status, agent=agent, risk=risk
    )
    return {"items": proposals[offset : offset + limit], "count": proposals.count()}


@router.get("/proposals/{int:proposal_id}", response=ProposalOut, tags=["proposals"])
def proposal_detail(request, proposal_id: int):
    return access_proposal(membership=request_workspace(request), proposal_id=proposal_id)


@router.post("/proposals/{int:proposal_id}/approve", response=ProposalOut, tags=["proposals"])
def proposal_approve(request, proposal_id: int, body: ApproveIn):
    """Approves the payload whose hash you were shown (409 if it changed since), or your
    edit of it (`payload`), which the policy checks again. Deciding a proposal that was
    decided already changes nothing and returns its state."""
    membership = request_workspace(request, role=Role.OPERATOR)
    proposal = access_proposal(membership=membership, proposal_id=proposal_id)
    decided = services.proposal_approve(
        proposal=proposal, membership=membership, shown_hash=body.payload_hash, payload=body.payload
    )
    return access_proposal(membership=membership, proposal_id=decided.pk)


@router.post("/proposals/{int:proposal_id}/reject", response=ProposalOut, tags=["proposals"])
def proposal_reject(request, proposal_id: int, body: RejectIn):
    membership = request_workspace(request, role=Role.OPERATOR)
    proposal = access_proposal(membership=membership, proposal_id=proposal_id)
    services.proposal_reject(
        proposal=proposal, membership=membership, reason=body.reason, category=body.category
    )
    return access_proposal(membership=membership, proposal_id=proposal_id)


@router.post("/proposals/{int:proposal_id}/undo", response=ProposalOut, tags=["proposals"])
def proposal_undo(request, proposal_id: int):
    """Takes a committed change back, if its effector can (409 otherwise)."""
    membership = request_workspace(request, role=Role.OPERATOR)
    proposal = access_proposal(membership=membership, proposal_id=proposal_id)
    services.proposal_undo(proposal=proposal, membership=membership)
    return access_proposal(membership=membership, proposal_id=proposal_id)


@router.post("/proposals/bulk", response=ProposalBulkOut, tags=["proposals"])
def proposal_bulk(request, body: ProposalBulkIn):
    """Approves or rejects many; each item names the hash that was shown for it."""
    membership = request_workspace(request, role=Role.OPERATOR)
    done, skipped = services.proposal_bulk(
        membership=membership,
        action=body.action,
        items=[(item.id, item.payload_hash) for item in body.items],
        reason=body.reason,
        category=body.category,
    )
    return {"action": body.action, "done": done, "skipped": skipped}


# -- policy and endpoints -------------------------------------------------------------------


@router.get("/policy-rules", response=RulesOut, tags=["proposals"])
def rules_detail(request):
    """The workspace's rules in order (the shipped defaults while it has none of its own)."""
    membership = request_workspace(request)
    stored = PolicyRule.objects.filter(workspace_id=membership.workspace_id).exists()
    return {
        "rules": services.rules_for(workspace_id=membership.workspace_id),
        "default": not stored,
    }


@router.put("/policy-rules", response=RulesOut, tags=["proposals"])
def rules_put(request, body: RulesIn):
    """Replaces the rules (owners); checked whole, 400 naming the first bad rule."""
    membership = request_workspace(request, role=Role.OWNER)
    rules = services.rules_set(
        workspace=membership.workspace, rules=body.rules, actor=Actor.of_user(membership.user)
    )
    return {"rules": rules, "default": False}


@router.get("/webhook-endpoints", response=list[WebhookEndpointOut], tags=["proposals"])
def webhook_endpoint_list(request):
    membership = request_workspace(request)
    return WebhookEndpoint.objects.filter(workspace_id=membership.workspace_id).order_by("name")


@router.put("/webhook-endpoints/{name}", response=WebhookEndpointOut, tags=["proposals"])
def webhook_endpoint_put(request, name: str, body: WebhookEndpointIn):
    """Where `core.webhook` may POST, and the secret that signs it (owners)."""
    membership = request_workspace(request, role=Role.OWNER)
    return services.webhook_endpoint_save(
        workspace=membership.workspace,
        name=name,
        url=body.url,
        secret=body.secret,
        actor=Actor.of_user(membership.user),
    )


# -- outcome metrics ------------------------------------------------------------------------


@router.get("/metrics/outcomes", response=OutcomesOut, tags=["metrics"])
def outcome_metrics(
    request, since: date | None = None, until: date | None = None, agent: str | None = None
):
    """What the agents did for the workspace between two days (both included; default the
    last 30 up to today, at most 366), of one agent if asked: totals, per day, per agent.
    400 when the range runs backwards or is too long; 404 for an agent it does not have."""
    membership = request_workspace(request)
    window = outcomes.outcome_window(since=since, until=until)
    return outcomes.outcome_metrics(
        workspace=membership.workspace,
        window=window,
        agent=access_agent(membership=membership, slug=agent) if agent else None,
    )
