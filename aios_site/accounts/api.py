from __future__ import annotations

from ninja import Router, Status

from aios_site.accounts import access, selectors, services
from aios_site.accounts.auth import request_membership, request_user
from aios_site.accounts.models import ApiToken, Membership
from aios_site.accounts.schemas import (
    MemberOut,
    MeOut,
    TokenCreatedOut,
    TokenIn,
    TokenOut,
    WorkspaceOut,
)

router = Router(tags=["workspaces"])


def _workspace_out(membership: Membership) -> WorkspaceOut:
    return WorkspaceOut(
        slug=membership.workspace.slug, name=membership.workspace.name, role=membership.role
    )


def _token_out(token: ApiToken) -> dict:
    return {
        "id": token.pk,
        "name": token.name,
        "prefix": token.prefix,
        "owner": token.membership.user.email,
        "created_at": token.created_at,
        "last_used_at": token.last_used_at,
    }


@router.get("/me", response=MeOut)
def me(request):
    """Who is calling, and the workspaces this credential reaches."""
    user = request_user(request)
    if isinstance(request.auth, ApiToken):
        memberships = [request.auth.membership]
    else:
        memberships = list(selectors.membership_list(user=user))
    return {"email": user.email, "workspaces": [_workspace_out(m) for m in memberships]}


@router.get("/workspaces/{slug}", response=WorkspaceOut)
def workspace_detail(request, slug: str):
    return _workspace_out(request_membership(request, slug=slug))


@router.get("/workspaces/{slug}/members", response=list[MemberOut])
def member_list(request, slug: str):
    membership = request_membership(request, slug=slug)
    return [
        {"email": m.user.email, "role": m.role}
        for m in selectors.member_list(membership=membership)
    ]


@router.get("/workspaces/{slug}/tokens", response=list[TokenOut])
def token_list(request, slug: str):
    membership = request_membership(request, slug=slug)
    return [_token_out(t) for t in selectors.token_list(membership=membership)]


@router.post("/workspaces/{slug}/tokens", response={201: TokenCreatedOut})
def token_create(request, slug: str, payload: TokenIn):
    membership = request_membership(request, slug=slug)
    token, raw = services.token_create(membership=membership, name=payload.name)
    return Status(201, {**_token_out(token), "token": raw})


@router.delete("/workspaces/{slug}/tokens/{token_id}", response={204: None})
def token_revoke(request, slug: str, token_id: int):
    membership = request_membership(request, slug=slug)
    services.token_revoke(token=access.access_token(membership=membership, token_id=token_id))
    return Status(204, None)
