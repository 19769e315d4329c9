from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from aios_site.accounts.models import ApiToken, Membership, Workspace
from aios_site.accounts.services import demo_ensure, token_digest

pytestmark = pytest.mark.django_db


def _token_create(*args: str) -> str:
    out = StringIO()
    call_command("token", "create", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_token_create_adds_a_missing_person_as_operator_and_prints_a_working_token(
    client, workspace
):
    raw = _token_create("--workspace", "alice", "--email", "New.Person@Shop.example")

    membership = Membership.objects.get(user__username="new.person@shop.example")
    assert membership.workspace == workspace and membership.role == "operator"
    assert ApiToken.objects.get().digest == token_digest(raw)
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.json()["workspaces"] == [
        {"slug": "alice", "name": "Alice's Shop", "role": "operator"}
    ]


def test_token_create_keeps_an_existing_role_unless_one_is_given(owner, workspace):
    _token_create("--workspace", "alice", "--email", "alice@shop.example")
    assert Membership.objects.get(user=owner).role == "owner"

    _token_create("--workspace", "alice", "--email", "alice@shop.example", "--role", "viewer")
    assert Membership.objects.get(user=owner).role == "viewer"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workspace", "nope", "--email", "a@shop.example"], "no workspace with slug 'nope'"),
        (["--workspace", "alice", "--email", "not-an-email"], "not a valid email address"),
    ],
)
def test_token_create_refuses_bad_input_without_creating_anything(workspace, args, message):
    with pytest.raises(CommandError, match=message):
        _token_create(*args)
    assert not ApiToken.objects.exists() and not Membership.objects.exists()


def test_the_demo_workspace_is_created_once_and_its_password_shown_once(db):
    first = demo_ensure()
    second = demo_ensure()

    assert first.password and second.password is None
    assert Workspace.objects.filter(slug="demo").count() == 1
    assert Membership.objects.filter(workspace__slug="demo", role="owner").count() == 1
    reset = demo_ensure(reset_password=True)
    assert reset.password and reset.password != first.password


def test_the_demo_command_adds_the_demo_agents_and_memory_once(db):
    call_command("demo", stdout=StringIO())
    call_command("demo", stdout=StringIO())

    from agents.models import Agent
    from memory.models import MemoryItem

    assert sorted(Agent.objects.filter(workspace__slug="demo").values_list("slug", "pipeline")) == [
        ("ask-memory", "demo.recall"),
        ("echo", "demo.echo"),
        ("noop", "demo.noop"),
        ("proposer", "demo.propose"),
        ("try-model", "demo.model_call"),
    ]
    demo_memory = MemoryItem.objects.filter(workspace__slug="demo")
    assert demo_memory.count() == 9 and set(demo_memory.values_list("version", flat=True)) == {1}
    assert demo_memory.get(key="devoluciones").search_config == "spanish"
