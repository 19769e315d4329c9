"""The audit log: every change recorded with its actor, one hash chain per workspace, tamper
detection by `aios audit verify` and the API, append-only in the database."""

from __future__ import annotations

import threading
from io import StringIO

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from approvals.audit import GENESIS, Actor, audit_record, audit_verify
from approvals.models import AuditEntry
from tests.helpers import superuser_cursor
from tests.memory.test_api import Api
from tests.memory.test_memory import IMPORT, fact

pytestmark = pytest.mark.django_db

ALICE = Actor("user", "alice@shop.example")


def _tamper(sql: str, params: list) -> None:
    """What someone with the superuser's access to the database could do, trigger and all
    (the application's own login cannot: tests/guarantees/test_data.py)."""
    with superuser_cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # triggers off
        cursor.execute(sql, params)


def _three_entries(workspace):
    fact(workspace, "Returns within 30 days.", key="returns")
    fact(workspace, "Returns within 60 days.", key="returns")
    fact(workspace, "Returns never.", key="returns", source=IMPORT)


def test_memory_writes_are_recorded_with_who_and_before_and_after(workspace):
    _three_entries(workspace)

    entries = list(AuditEntry.objects.order_by("seq"))

    assert [(e.seq, e.action, e.object_id, e.actor_label) for e in entries] == [
        (1, "memory.write", "policies/returns", "alice"),
        (2, "memory.write", "policies/returns", "alice"),
        (3, "memory.write", "policies/returns", "import catalog.csv"),
    ]
    assert entries[1].before["content"] == "Returns within 30 days."
    assert entries[1].after["content"] == "Returns within 60 days."
    assert entries[2].after["status"] == "needs_review"
    assert entries[0].prev_hash == GENESIS
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]


def test_an_intact_chain_verifies(workspace):
    _three_entries(workspace)

    assert audit_verify().as_dict() == {"ok": True, "checked": 3, "first_bad": None}
    out = StringIO()
    call_command("audit", "verify", stdout=out)
    assert out.getvalue() == "audit log intact: 3 entries verified\n"


@pytest.mark.django_db(transaction=True)  # the tampering is another connection's
def test_an_entry_edited_in_sql_is_found_by_verify_and_the_command_fails(workspace):
    _three_entries(workspace)
    _tamper(
        "UPDATE approvals_auditentry SET after = jsonb_set(after, '{content}', '\"Never.\"')"
        " WHERE seq = 2 AND workspace_id = %s",
        [workspace.pk],
    )

    verdict = audit_verify(workspace_id=workspace.pk)

    assert (verdict.ok, verdict.seq, verdict.checked) == (False, 2, 1)
    assert verdict.problem == "its content does not match its hash (edited after it was written)"
    with pytest.raises(CommandError, match="broken in workspace 'alice' at entry 2"):
        call_command("audit", "verify", "--workspace", "alice")


@pytest.mark.django_db(transaction=True)  # the tampering is another connection's
def test_a_removed_entry_is_found_as_a_gap(workspace):
    _three_entries(workspace)
    _tamper("DELETE FROM approvals_auditentry WHERE seq = 2 AND workspace_id = %s", [workspace.pk])

    verdict = audit_verify()

    assert (verdict.ok, verdict.seq, verdict.problem) == (
        False,
        3,
        "entry 2 is missing (next is 3)",
    )


@pytest.mark.django_db(transaction=True)  # the tampering is another connection's
def test_an_entry_rehashed_after_an_edit_still_breaks_the_link_of_the_next(workspace):
    _three_entries(workspace)
    _tamper(
        "UPDATE approvals_auditentry SET reason = 'nothing to see', hash = repeat('a', 64)"
        " WHERE seq = 2 AND workspace_id = %s",
        [workspace.pk],
    )

    assert audit_verify().seq == 2  # its own hash no longer matches


@pytest.mark.django_db(transaction=True)  # the superuser's connection must see the entries
def test_the_database_refuses_to_update_or_delete_an_entry_even_to_its_superuser(workspace):
    """The application's login has no right to (permission denied); the trigger refuses
    anyone else who has, short of switching it off."""
    _three_entries(workspace)

    for statement in (
        "UPDATE approvals_auditentry SET reason = 'x'",
        "DELETE FROM approvals_auditentry",
    ):
        with (
            pytest.raises(DatabaseError, match="permission denied"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
        with superuser_cursor() as cursor, pytest.raises(psycopg.Error, match="append-only"):
            cursor.execute(statement)
    assert AuditEntry.objects.count() == 3


def test_each_workspace_has_its_own_chain(workspace, other_workspace):
    audit_record(workspace_id=workspace.pk, actor=ALICE, action="x", object_type="t", object_id=1)
    audit_record(
        workspace_id=other_workspace.pk, actor=ALICE, action="x", object_type="t", object_id=1
    )

    assert sorted(AuditEntry.objects.values_list("workspace_id", "seq")) == [
        (workspace.pk, 1),
        (other_workspace.pk, 1),
    ]
    assert audit_verify().ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_get_one_gapless_chain(workspace):
    def write(n: int) -> None:
        for i in range(10):
            audit_record(
                workspace_id=workspace.pk,
                actor=ALICE,
                action="x",
                object_type="t",
                object_id=n * 100 + i,
            )
        connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(AuditEntry.objects.values_list("seq", flat=True)) == list(range(1, 41))
    assert audit_verify().as_dict() == {"ok": True, "checked": 40, "first_bad": None}


def test_agent_settings_and_policies_changed_through_the_api_are_recorded(
    client, owner, make_agent
):
    make_agent("demo.noop", slug="copy")
    api = Api(client, owner)

    api.send("patch", "/agents/copy", {"daily_budget": "2.5", "enabled": False})
    api.send("put", "/model-policy", {"policy": {"draft": {"tier": "template"}}})
    api.send(
        "put",
        "/providers/qwen",
        {"name": "qwen", "base_url": "https://q.example/v1", "api_key": "sk-secret-77"},
    )

    update = AuditEntry.objects.get(action="agent.update")
    assert (update.before, update.after) == (
        {"daily_budget": None, "enabled": True},
        {"daily_budget": "2.5", "enabled": False},
    )
    assert update.actor_label == "alice@shop.example" and update.actor_user_id == owner.pk
    policy = AuditEntry.objects.get(action="workspace.model_policy")
    assert policy.after == {"draft": {"tier": "template"}}
    provider = AuditEntry.objects.get(action="provider.save")
    assert provider.after["has_key"] is True and "sk-secret" not in str(provider.after)
    assert audit_verify().ok


def test_the_api_lists_one_objects_history_and_verifies_only_its_workspace(
    client, operator, outsider, workspace
):
    _three_entries(workspace)
    mine, theirs = Api(client, operator), Api(client, outsider)

    history = mine.get("/audit", object_type="memory", object_id="policies/returns").json()
    verify = mine.get("/audit/verify").json()

    assert history["count"] == 3 and [e["seq"] for e in history["items"]] == [3, 2, 1]
    assert verify == {"ok": True, "checked": 3, "first_bad": None}
    assert theirs.get("/audit").json() == {"items": [], "count": 0}
    assert theirs.get("/audit/verify").json()["checked"] == 0


def test_the_audit_page_filters_by_object_and_escapes_content(client, operator, workspace):
    fact(workspace, "<script>alert(1)</script> Returns.", key="returns")
    fact(workspace, "Ships from Lisbon.", key="origin", namespace="shipping")
    client.force_login(operator)

    page = client.get(
        "/w/alice/audit/", {"object_type": "memory", "object_id": "shipping/origin"}
    ).content.decode()
    everything = client.get("/w/alice/audit/", {"verify": "1"}).content.decode()

    assert "shipping/origin v1" in page and "policies/returns" not in page
    assert "<script>alert(1)" not in everything and "&lt;script&gt;alert(1)" in everything
    assert "intact: 2 entries verified" in everything


def test_staff_read_the_audit_log_in_the_admin_but_cannot_change_it(admin_client, workspace):
    _three_entries(workspace)

    listed = admin_client.get("/admin/approvals/auditentry/")
    entry = AuditEntry.objects.get(seq=1)
    change = admin_client.post(f"/admin/approvals/auditentry/{entry.pk}/change/", {"reason": "x"})

    assert listed.status_code == 200 and "policies/returns v1" in listed.content.decode()
    assert change.status_code == 403
    assert audit_verify().ok
