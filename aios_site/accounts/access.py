"""Access helpers: the one place per object type that decides who may see what.

A workspace someone does not belong to does not exist for them (404); a member whose role
is too low for an action gets 403.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from aios_site.accounts.models import ApiToken, Membership, Role


def access_workspace(*, user, slug: str, role: str = Role.VIEWER) -> Membership:
    """The requester's membership in workspace `slug`, or 404; 403 if their role is too low."""
    if not user.is_authenticated:
        raise Http404("No such workspace.")
    membership = (
        Membership.objects.select_related("workspace", "user")
        .filter(user=user, workspace__slug=slug)
        .first()
    )
    if membership is None:
        raise Http404("No such workspace.")
    if not membership.has_role(role):
        raise PermissionDenied(f"This needs the {role} role in {membership.workspace.name}.")
    return membership


def access_token(*, membership: Membership, token_id: int) -> ApiToken:
    """A token of the member's workspace: their own, or any of the workspace's for an owner."""
    tokens = ApiToken.objects.select_related("membership__user").filter(
        membership__workspace_id=membership.workspace_id
    )
    if not membership.has_role(Role.OWNER):
        tokens = tokens.filter(membership=membership)
    token = tokens.filter(pk=token_id).first()
    if token is None:
        raise Http404("No such token.")
    return token
