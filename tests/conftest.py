"""Shared fixtures: a workspace with an owner, an operator and a viewer, and an outsider
who owns another workspace. The database and Redis are the real ones the test settings start."""

from __future__ import annotations

import os
import uuid

import pytest
from django.db import connection

from agents.models import Agent
from agents.services import agent_create
from aios_site.accounts.models import Role
from tests.factories import MembershipFactory, WorkspaceFactory
from tests.helpers import models_free, serve_models_from

# The suite starts many short-lived workers and web processes: each loading the embedding
# model at start would cost seconds of CPU it never uses (agents/llm/local.py).
os.environ.setdefault("AIOS_PRELOAD_MODELS", "0")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database as `aios up` leaves its own: migrated by the application's login,
    then the audit table handed to its own owner by the superuser (aios_site/dbroles.py).
    The one right the application lacks that the test runner needs is TRUNCATE on it, to
    empty the tables between tests."""
    from aios_site import dbroles

    admin = os.environ.get("AIOS_TEST_ADMIN_DATABASE_URL")
    if admin:
        with django_db_blocker.unblock():
            settings = connection.settings_dict
            dbroles.hand_over_audit(admin, settings["NAME"], truncatable_by=settings["USER"])


@pytest.fixture(autouse=True)
def _audit_heads(settings, tmp_path):
    """Each test's signed audit heads apart: a flushed test database must not look truncated
    to the next test's `audit verify`."""
    settings.AIOS_AUDIT_HEADS_DIR = tmp_path / "audit-heads"


def _member(workspace, role: str, email: str):
    return MembershipFactory(workspace=workspace, role=role, user__username=email).user


@pytest.fixture
def workspace(db):
    return WorkspaceFactory(name="Alice's Shop", slug="alice")


@pytest.fixture
def owner(workspace):
    return _member(workspace, Role.OWNER, "alice@shop.example")


@pytest.fixture
def operator(workspace):
    return _member(workspace, Role.OPERATOR, "olivia@shop.example")


@pytest.fixture
def viewer(workspace):
    return _member(workspace, Role.VIEWER, "victor@shop.example")


@pytest.fixture
def other_workspace(db):
    return WorkspaceFactory(name="Bob's Shop", slug="bob")


@pytest.fixture
def outsider(other_workspace):
    """Owner of another workspace: signed in, but a stranger to `workspace`."""
    return _member(other_workspace, Role.OWNER, "bob@shop.example")


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def outsider_client(client, outsider):
    client.force_login(outsider)
    return client


@pytest.fixture
def fake_openai(settings, db):
    """A local OpenAI-compatible server, configured as the default remote provider, free
    unless a test prices its models."""
    from tests.fakes.openai_server import FakeOpenAI

    server = FakeOpenAI()
    serve_models_from(settings, server.base_url, timeout=1.0)
    models_free()
    yield server
    server.close()


@pytest.fixture
def make_agent(workspace):
    def make(pipeline: str = "demo.echo", slug: str | None = None, **fields):
        slug = slug or pipeline.replace(".", "-")
        existing = Agent.objects.filter(workspace=workspace, slug=slug).first()
        return existing or agent_create(
            workspace=workspace, slug=slug, name=pipeline, pipeline=pipeline, **fields
        )

    return make


@pytest.fixture
def proposer(make_agent):
    """An agent that proposes what its input says: a note or a webhook call."""
    return make_agent(
        "demo.propose", slug="proposer", allowed_effectors=["core.note", "core.webhook"]
    )


@pytest.fixture
def key() -> str:
    """A fresh name for the demo tools' call counters."""
    return uuid.uuid4().hex
