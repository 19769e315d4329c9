from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from aios_site.accounts.access import access_token, access_workspace
from aios_site.accounts.models import Role
from aios_site.accounts.services import token_create

pytestmark = pytest.mark.django_db


def test_a_member_gets_their_membership(owner, workspace):
    assert access_workspace(user=owner, slug="alice").role == Role.OWNER


@pytest.mark.parametrize("slug", ["alice", "no-such-workspace"])
def test_an_outsider_and_a_missing_workspace_look_the_same(outsider, workspace, slug):
    with pytest.raises(Http404):
        access_workspace(user=outsider, slug=slug)


def test_an_anonymous_visitor_gets_404(workspace):
    with pytest.raises(Http404):
        access_workspace(user=AnonymousUser(), slug="alice")


@pytest.mark.parametrize(
    ("role", "needed", "allowed"),
    [
        (Role.VIEWER, Role.OPERATOR, False),
        (Role.OPERATOR, Role.OPERATOR, True),
        (Role.OPERATOR, Role.OWNER, False),
        (Role.OWNER, Role.OPERATOR, True),
    ],
)
def test_a_role_below_the_one_needed_is_forbidden(workspace, role, needed, allowed):
    from tests.factories import MembershipFactory

    member = MembershipFactory(workspace=workspace, role=role).user
    if allowed:
        assert access_workspace(user=member, slug="alice", role=needed).user == member
    else:
        with pytest.raises(PermissionDenied):
            access_workspace(user=member, slug="alice", role=needed)


def test_a_member_cannot_reach_a_colleagues_token_but_the_owner_can(owner, operator, viewer):
    token = token_create(membership=operator.memberships.get(), name="olivia's")[0]

    with pytest.raises(Http404):
        access_token(membership=viewer.memberships.get(), token_id=token.pk)
    assert access_token(membership=owner.memberships.get(), token_id=token.pk) == token
