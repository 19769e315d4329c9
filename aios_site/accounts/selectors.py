"""Reads, always scoped to the requester."""

from __future__ import annotations

from django.db.models import QuerySet

from aios_site.accounts.models import ApiToken, Membership, Role


def membership_list(*, user) -> QuerySet[Membership]:
    return (
        Membership.objects.select_related("workspace").filter(user=user).order_by("workspace__name")
    )


def member_list(*, membership: Membership) -> QuerySet[Membership]:
    return (
        Membership.objects.select_related("user")
        .filter(workspace_id=membership.workspace_id)
        .order_by("user__username")
    )


def token_list(*, membership: Membership) -> QuerySet[ApiToken]:
    """Owners see every token of the workspace; others see their own."""
    tokens = ApiToken.objects.select_related("membership__user").filter(
        membership__workspace_id=membership.workspace_id, revoked_at__isnull=True
    )
    if not membership.has_role(Role.OWNER):
        tokens = tokens.filter(membership=membership)
    return tokens
