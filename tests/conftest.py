"""Shared fixtures: a workspace with an owner, an operator and a viewer, and an outsider
who owns another workspace. The database and Redis are the real ones the test settings start."""

from __future__ import annotations

import pytest

from aios_site.accounts.models import Role
from tests.factories import MembershipFactory, WorkspaceFactory


@pytest.fixture
def workspace(db):
    return WorkspaceFactory(name="Alice's Shop", slug="alice")


@pytest.fixture
def owner(workspace):
    return MembershipFactory(
        workspace=workspace, role=Role.OWNER, user__username="alice@shop.example"
    ).user


@pytest.fixture
def operator(workspace):
    return MembershipFactory(
        workspace=workspace, role=Role.OPERATOR, user__username="olivia@shop.example"
    ).user


@pytest.fixture
def viewer(workspace):
    return MembershipFactory(
        workspace=workspace, role=Role.VIEWER, user__username="victor@shop.example"
    ).user


@pytest.fixture
def other_workspace(db):
    return WorkspaceFactory(name="Bob's Shop", slug="bob")


@pytest.fixture
def outsider(other_workspace):
    """Owner of another workspace: signed in, but a stranger to `workspace`."""
    return MembershipFactory(
        workspace=other_workspace, role=Role.OWNER, user__username="bob@shop.example"
    ).user


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def outsider_client(client, outsider):
    client.force_login(outsider)
    return client
