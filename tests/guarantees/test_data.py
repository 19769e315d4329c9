"""Issue 17, data: what a store deletes or a customer asks to erase stays gone, and the audit
log's tamper evidence survives both redaction and a rewind of its newest entries."""

from __future__ import annotations

import json
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils.html import escape

from approvals.audit import ERASED, SETUP, audit_record, audit_unseal, audit_verify
from approvals.models import AuditEntry
from catalog.models import Product
from memory.models import MemoryItem
from tests.agents.conftest import drive
from tests.catalog.conftest import SHOP
from tests.catalog.test_pipelines import _message, _order, _run_of
from tests.catalog.test_webhooks import _deliver, _payload, _process_all
from tests.helpers import superuser_cursor
from tests.memory.test_api import Api

pytestmark = pytest.mark.django_db


def _fact_for(product_id: int) -> MemoryItem | None:
    return MemoryItem.objects.filter(
        namespace="products", key=f"product:{product_id}", deleted_at__isnull=True
    ).first()


@pytest.mark.parametrize("updated_at", ["2026-01-01T10:00:00Z", "2026-01-01T12:00:00Z"])
def test_an_update_delivered_after_the_delete_does_not_bring_the_product_back(
    client, store, updated_at
):
    """Shopify never reuses a deleted product's id: any update for it after the delete is a
    late delivery, whether it is dated before the delete or (clock skew, retries) after."""
    payload = _payload("products-create.json")
    _deliver(client, "products/create", payload, webhook_id="c", triggered_at="2026-01-01T09:00Z")
    _deliver(
        client,
        "products/delete",
        {"id": payload["id"]},
        webhook_id="d",
        triggered_at="2026-01-01T11:00:00Z",
    )
    _process_all()
    assert _fact_for(payload["id"]) is None

    _deliver(
        client,
        "products/update",
        {**payload, "title": "Back from the dead"},
        webhook_id="u",
        triggered_at=updated_at,
    )
    _process_all()

    product = Product.objects.get(external_id=payload["id"])
    assert product.deleted_at is not None and product.title == "Example T-Shirt"
    assert _fact_for(payload["id"]) is None


def test_an_update_for_a_product_deleted_before_it_was_ever_seen_is_dropped(client, store):
    payload = _payload("products-create.json")
    _deliver(
        client,
        "products/delete",
        {"id": payload["id"]},
        webhook_id="d",
        triggered_at="2026-01-01T11:00:00Z",
    )
    _process_all()

    _deliver(
        client, "products/update", payload, webhook_id="u", triggered_at="2026-01-01T10:00:00Z"
    )
    _process_all()

    assert not Product.objects.filter(external_id=payload["id"], deleted_at__isnull=True).exists()
    assert _fact_for(payload["id"]) is None


# -- 14. a customer's erasure reaches everything that carried them ----------------------------

EMAIL, NAME, TEXT = "ana.redact@example.com", "Quintero-Zed", "Calle Falsa 123"
CUSTOMER_ID = 7007


def _traces(*needles: str) -> list[tuple[str, str, str]]:
    """(table, column, needle) wherever a text or JSON column of the database holds one."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public'"
            " AND data_type IN ('text', 'character varying', 'json', 'jsonb')"
        )
        columns = cursor.fetchall()
        found = []
        for table, column in columns:
            for needle in needles:
                cursor.execute(
                    # the names come from the catalog, not from input
                    f'SELECT 1 FROM "{table}" WHERE "{column}"::text ILIKE %s LIMIT 1',  # noqa: S608
                    [f"%{needle}%"],
                )
                if cursor.fetchone():
                    found.append((table, column, needle))
    return found


@pytest.fixture
def customer_with_history(client, store, intents, django_capture_on_commit_callbacks):
    """A customer known from a webhook, with an order, a message answered by the support agent
    (its run, journal and reply proposal) and a data export."""
    customer = {"id": CUSTOMER_ID, "email": EMAIL, "first_name": "Anabel", "last_name": NAME}
    _deliver(client, "customers/create", customer, webhook_id="cc")
    _order(store, email=EMAIL)
    _message(
        store,
        f"Hola, ¿dónde está mi pedido? Envío a {TEXT}.",
        email=EMAIL,
        name=f"Anabel {NAME}",
        order_ref="#1001",
    )
    drive(_run_of("support"))
    request = {"shop_domain": SHOP, "customer": {"id": CUSTOMER_ID, "email": EMAIL}}
    _deliver(client, "customers/data_request", request, webhook_id="dr")
    _process_all()
    assert _traces(EMAIL, NAME, TEXT)  # there is something to erase


def test_a_customer_redaction_leaves_no_trace_of_them_anywhere_in_the_database(
    client, customer_with_history
):
    redact = {
        "shop_domain": SHOP,
        "customer": {"id": CUSTOMER_ID, "email": EMAIL},
        "orders_to_redact": [5001],
    }
    _deliver(client, "customers/redact", redact, webhook_id="cr")
    _process_all()

    assert _traces(EMAIL, NAME, TEXT) == []
    assert audit_verify().ok


def test_a_shop_redaction_leaves_no_trace_of_its_customers_anywhere_in_the_database(
    client, customer_with_history
):
    _deliver(client, "shop/redact", {"shop_domain": SHOP}, webhook_id="sr")
    _process_all()

    assert _traces(EMAIL, NAME, TEXT) == []
    assert audit_verify().ok


# -- 17. the audit log cannot be rewound by whoever can write its table -----------------------


def _note(workspace, n: int) -> None:
    audit_record(
        workspace_id=workspace.pk, actor=SETUP, action="test.note", object_type="note", object_id=n
    )


@pytest.mark.django_db(transaction=True)
def test_verify_reports_the_newest_entries_removed_by_someone_with_owner_rights(
    workspace, settings, tmp_path
):
    settings.AIOS_AUDIT_HEADS_DIR = tmp_path
    for n in range(5):
        _note(workspace, n)
    assert audit_verify().ok

    with superuser_cursor() as cursor:  # more than the application may: trigger off
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "DELETE FROM approvals_auditentry WHERE workspace_id = %s AND seq > 3", [workspace.pk]
        )

    verdict = audit_verify()
    assert (verdict.ok, verdict.workspace_id, verdict.seq) == (False, workspace.pk, 5)
    assert verdict.problem == (
        "entries after 3 are missing: a signed head names entry 5 (the log was truncated)"
    )


@pytest.mark.django_db(transaction=True)
def test_a_forged_head_is_reported_not_believed(workspace, settings, tmp_path):
    settings.AIOS_AUDIT_HEADS_DIR = tmp_path
    _note(workspace, 1)
    (head_file,) = tmp_path.iterdir()
    head_file.write_text(head_file.read_text().replace('"seq": 1', '"seq": 9'))

    verdict = audit_verify()

    assert (verdict.ok, verdict.problem) == (False, f"a signed head in {head_file.name} is forged")


@pytest.mark.django_db(transaction=True)
def test_the_application_connects_as_its_own_login_which_cannot_touch_the_audit_trigger(
    workspace,
):
    """Not a role made for the test: the login the application, its workers and the tests
    themselves connect as (aios_site/dbroles.py), as `aios up` sets it up."""
    _note(workspace, 1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, pg_has_role(current_user, 'aios_app', 'MEMBER') FROM pg_roles"
            " WHERE rolname = current_user"
        )
        assert cursor.fetchone() == (False, True)
    for statement in (
        "ALTER TABLE approvals_auditentry DISABLE TRIGGER approvals_audit_append_only",
        "DROP TRIGGER approvals_audit_append_only ON approvals_auditentry",
        "SET session_replication_role = replica",
        "DELETE FROM approvals_auditentry",
        "UPDATE approvals_auditentry SET reason = 'x'",
        "ALTER TABLE approvals_auditentry OWNER TO CURRENT_USER",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL aios.audit_purge = 'on'")  # the trigger's purge switch
            cursor.execute(statement)
    assert AuditEntry.objects.filter(workspace=workspace).count() == 1
    assert audit_verify().ok


def test_the_audit_log_keeps_a_reply_sealed_readable_until_the_customer_is_erased(
    client, customer_with_history
):
    entry = AuditEntry.objects.get(action="proposal.create")
    assert NAME not in json.dumps(entry.after)  # stored sealed
    assert NAME in audit_unseal(entry.after, workspace_id=entry.workspace_id)["payload"]["body"]

    redact = {"shop_domain": SHOP, "customer": {"id": CUSTOMER_ID, "email": EMAIL}}
    _deliver(client, "customers/redact", redact, webhook_id="cr")
    _process_all()

    entry.refresh_from_db()
    assert audit_unseal(entry.after, workspace_id=entry.workspace_id) is None
    assert audit_verify().ok


def _read_as(client, owner) -> tuple[str, dict]:
    """The reply's entry as the owner reads it: the Audit page, and the API's item."""
    client.force_login(owner)
    page = client.get("/w/alice/audit/", {"action": "proposal.create"}).content.decode()
    [item] = Api(client, owner).get("/audit", action="proposal.create").json()["items"]
    return page, item


def test_the_owner_reads_a_customers_entry_on_the_audit_page_and_api_until_they_are_erased(
    client, owner, customer_with_history
):
    entry = AuditEntry.objects.get(action="proposal.create")
    envelope = [entry.after["sealed"], entry.after["subject"]]  # ciphertext and key id

    page, item = _read_as(client, owner)

    assert NAME in page and NAME in item["after"]["payload"]["body"]
    assert item["reason"] == "rule: Templated order-status replies go out by themselves"
    assert not [part for part in envelope if part in page or part in json.dumps(item)]

    redact = {"shop_domain": SHOP, "customer": {"id": CUSTOMER_ID, "email": EMAIL}}
    _deliver(client, "customers/redact", redact, webhook_id="cr")
    _process_all()
    page, item = _read_as(client, owner)

    assert escape(ERASED) in page and NAME not in page
    assert (item["before"], item["after"], item["reason"]) == (None, ERASED, ERASED)
    assert not [part for part in envelope if part in page or part in json.dumps(item)]
    out = StringIO()
    call_command("audit", "verify", stdout=out)
    assert out.getvalue().startswith("audit log intact:")


@pytest.fixture
def app_role_connection(transactional_db):
    """A connection as a login role in `aios_app` alone, the rights a deployment's
    application login gets (made here by the superuser)."""
    with superuser_cursor() as cursor:
        cursor.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'aios_runtime_test')"
            " THEN CREATE ROLE aios_runtime_test LOGIN IN ROLE aios_app; END IF; END $$"
        )
    params = connection.get_connection_params()
    params.update(user="aios_runtime_test", autocommit=True)
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params) as app:
        yield app


def test_the_app_role_may_read_and_append_audit_entries_but_not_disable_the_trigger_or_delete(
    workspace, app_role_connection
):
    _note(workspace, 1)
    for statement in (
        "ALTER TABLE approvals_auditentry DISABLE TRIGGER approvals_audit_append_only",
        "DROP TRIGGER approvals_audit_append_only ON approvals_auditentry",
        "SET session_replication_role = replica",
        "DELETE FROM approvals_auditentry",
        "UPDATE approvals_auditentry SET reason = 'x'",
        "TRUNCATE approvals_auditentry CASCADE",
        "ALTER TABLE approvals_auditentry OWNER TO aios_runtime_test",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app_role_connection.execute(statement)

    (count,) = app_role_connection.execute("SELECT count(*) FROM approvals_auditentry").fetchone()
    assert count == 1 and audit_verify().ok
