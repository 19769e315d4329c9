"""Shopify webhooks: HMAC (with rotation), durable storage, duplicates, bad input, stale
deliveries, products upserted and mirrored into memory; tenancy of the reads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Run
from catalog.models import Customer, DataExport, Order, Product, WebhookEvent
from catalog.services import webhook_process
from memory.models import MemoryItem
from tests.catalog.conftest import NEW_SECRET, OLD_SECRET, SHOP
from tests.helpers import SHARED_DATA, at_once
from tests.memory.test_api import Api

pytestmark = pytest.mark.django_db

HOOKS = SHARED_DATA / "shopify-webhooks"


def _payload(name: str) -> dict:
    return json.loads((HOOKS / name).read_text())


def _deliver(
    client,
    topic: str,
    body: dict | bytes,
    *,
    secret=NEW_SECRET,
    webhook_id="w-1",
    triggered_at: str | None = None,
    shop=SHOP,
):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    signature = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    headers = {
        "HTTP_X_SHOPIFY_TOPIC": topic,
        "HTTP_X_SHOPIFY_HMAC_SHA256": signature,
        "HTTP_X_SHOPIFY_SHOP_DOMAIN": shop,
        "HTTP_X_SHOPIFY_WEBHOOK_ID": webhook_id,
        "HTTP_X_SHOPIFY_API_VERSION": "2026-01",
    }
    if triggered_at:
        headers["HTTP_X_SHOPIFY_TRIGGERED_AT"] = triggered_at
    return client.post("/api/v1/webhooks/shopify", raw, content_type="application/json", **headers)


def _process_all() -> None:
    for pk in (
        WebhookEvent.objects.filter(status="received").order_by("pk").values_list("pk", flat=True)
    ):  # in the order they arrived
        webhook_process(event_id=pk)


def test_a_signed_product_webhook_is_stored_processed_and_mirrored_into_memory(client, store):
    response = _deliver(client, "products/create", _payload("products-create.json"))

    assert response.status_code == 200 and response.json() == {"detail": "received"}
    event = WebhookEvent.objects.get()
    assert (event.topic, event.webhook_id, event.api_version, event.status) == (
        "products/create",
        "w-1",
        "2026-01",
        "received",
    )
    _process_all()
    product = Product.objects.get()
    assert (product.title, product.variants.count()) == ("Example T-Shirt", 2)
    fact = MemoryItem.objects.get(namespace="products", key=f"product:{product.external_id}")
    assert fact.source_kind == "catalog" and "Example T-Shirt" in fact.content
    assert "Small: 19.99" in fact.content


def test_the_previous_secret_still_verifies_during_a_rotation(client, store):
    assert (
        _deliver(
            client, "products/create", _payload("products-create.json"), secret=OLD_SECRET
        ).status_code
        == 200
    )


def test_a_bad_signature_is_401_and_nothing_is_stored(client, store):
    response = _deliver(
        client, "products/create", _payload("products-create.json"), secret="not-the-secret"
    )

    assert response.status_code == 401
    assert response.json() == {"detail": "the webhook signature does not verify"}
    assert WebhookEvent.objects.count() == 0


def test_an_unknown_shop_is_401(client, store):
    response = _deliver(client, "products/create", {"id": 1}, shop="other.myshopify.com")

    assert response.status_code == 401 and WebhookEvent.objects.count() == 0


def test_a_repeated_webhook_id_is_acknowledged_and_dropped(client, store):
    _deliver(client, "products/create", _payload("products-create.json"))

    again = _deliver(client, "products/create", _payload("products-create.json"))

    assert again.status_code == 200 and again.json() == {"detail": "already received"}
    assert WebhookEvent.objects.count() == 1


def test_malformed_json_is_400_and_an_oversized_body_413(client, store):
    assert _deliver(client, "products/create", b"{not json").status_code == 400
    big = _deliver(client, "products/create", b"{" + b" " * (3 * 1024 * 1024) + b"}")
    assert big.status_code == 413
    assert WebhookEvent.objects.count() == 0


def test_an_unknown_topic_is_stored_and_ignored_with_the_reason(client, store):
    _deliver(client, "themes/publish", {"id": 5})
    _process_all()

    event = WebhookEvent.objects.get()
    assert event.status == "ignored" and "does not act on 'themes/publish'" in event.error


def test_an_older_delivery_never_overwrites_newer_data(client, store):
    newer = _payload("products-update.json") | {"title": "Newest title"}
    older = _payload("products-update.json") | {"title": "Older title"}
    now = timezone.now()
    _deliver(client, "products/update", newer, webhook_id="w-2", triggered_at=now.isoformat())
    _deliver(
        client,
        "products/update",
        older,
        webhook_id="w-1",
        triggered_at=(now - timedelta(minutes=5)).isoformat(),
    )

    _process_all()

    assert Product.objects.get().title == "Newest title"
    assert set(WebhookEvent.objects.values_list("webhook_id", "status")) == {
        ("w-2", "processed"),
        ("w-1", "stale"),
    }


def test_a_product_update_supersedes_its_memory_fact_without_review(client, store):
    _deliver(client, "products/create", _payload("products-create.json"), webhook_id="w-1")
    _deliver(
        client,
        "products/update",
        _payload("products-update.json") | {"title": "Renamed T-Shirt"},
        webhook_id="w-2",
    )
    _process_all()

    versions = MemoryItem.objects.filter(namespace="products").order_by("version")
    assert [(v.version, v.status) for v in versions] == [(1, "current"), (2, "current")]
    assert versions[1].superseded_by is None and "Renamed T-Shirt" in versions[1].content


def test_a_deleted_product_leaves_the_catalog_and_memory(client, store):
    _deliver(client, "products/create", _payload("products-create.json"), webhook_id="w-1")
    _deliver(client, "products/delete", _payload("products-delete.json"), webhook_id="w-2")
    _process_all()

    assert Product.objects.get().deleted_at is not None
    assert not MemoryItem.objects.filter(namespace="products", deleted_at__isnull=True).exists()


def test_products_and_events_are_read_per_workspace(client, store, operator, outsider):
    _deliver(client, "products/create", _payload("products-create.json"))
    _process_all()
    mine, theirs = Api(client, operator), Api(client, outsider)

    [product] = mine.get("/products").json()
    assert product["title"] == "Example T-Shirt" and len(product["variants"]) == 2
    assert mine.get(f"/products/{product['id']}").status_code == 200
    assert [e["topic"] for e in mine.get("/webhook-events").json()] == ["products/create"]
    assert theirs.get("/products").json() == [] and theirs.get("/webhook-events").json() == []
    assert theirs.get(f"/products/{product['id']}").status_code == 404


def test_only_an_owner_connects_a_store_and_a_shop_connects_once(client, owner, operator, store):
    body = {
        "shop_domain": "second.myshopify.com",
        "access_token": "t",
        "webhook_secrets": ["a-secret-long-enough"],
    }

    assert Api(client, operator).send("post", "/stores", body).status_code == 403
    created = Api(client, owner).send("post", "/stores", body)
    again = Api(client, owner).send("post", "/stores", body)

    assert created.status_code == 201
    assert created.json()["api_base_url"] == "https://second.myshopify.com"
    assert created.json()["webhook_secrets"] == 1 and "a-secret" not in created.content.decode()
    assert again.status_code == 409


# -- inventory, customers, orders, compliance ---------------------------------------------


def test_inventory_updates_reach_the_variant_and_an_older_one_is_stale(client, store):
    created = _payload("products-create.json")
    created["variants"][0]["inventory_item_id"] = 271878346596884000
    _deliver(client, "products/create", created, webhook_id="w-1")
    level = _payload("inventory_levels-update.json") | {"available": 3}
    now = timezone.now()
    _deliver(
        client, "inventory_levels/update", level, webhook_id="w-2", triggered_at=now.isoformat()
    )
    _deliver(
        client,
        "inventory_levels/update",
        level | {"available": 40},
        webhook_id="w-3",
        triggered_at=(now - timedelta(minutes=1)).isoformat(),
    )
    _process_all()

    variant = Product.objects.get().variants.get(inventory_item_id=271878346596884000)
    assert variant.inventory_quantity == 3
    assert WebhookEvent.objects.get(webhook_id="w-3").status == "stale"


def test_orders_and_their_customer_are_stored_and_a_cancellation_updates_the_order(
    client, store, operator
):
    order = _payload("orders-create.json") | {
        "cancelled_at": None,
        "updated_at": "2026-01-01T10:00:00Z",
    }
    _deliver(client, "orders/create", order, webhook_id="w-1")
    _deliver(
        client,
        "orders/cancelled",
        _payload("orders-cancelled.json") | {"updated_at": "2026-01-02T10:00:00Z"},
        webhook_id="w-2",
    )
    _process_all()

    stored = Order.objects.get()
    assert stored.name == order["name"] and stored.total_price is not None
    [listed] = Api(client, operator).get("/orders").json()
    assert (listed["name"], listed["cancelled_at"] is not None) == (order["name"], True)
    assert stored.cancelled_at is not None and len(stored.line_items) == len(order["line_items"])
    assert stored.customer is not None and stored.customer.email


def test_a_customer_redaction_erases_their_data_and_the_bodies_that_carried_it(client, store):
    order = _payload("orders-create.json")
    customer = _payload("customers-create.json") | {"id": order["customer"]["id"]}
    _deliver(client, "customers/create", customer, webhook_id="w-1")
    _deliver(client, "orders/create", order, webhook_id="w-2")
    redact = _payload("customers-redact.json")
    redact["customer"]["id"] = customer["id"]
    redact["orders_to_redact"] = [order["id"]]
    _deliver(client, "customers/redact", redact, webhook_id="w-3")
    _process_all()

    stored = Customer.objects.get()
    assert (stored.email, stored.first_name, stored.phone) == ("", "", "")
    assert stored.redacted_at is not None and Order.objects.get().email == ""
    personal = [value for value in (customer["email"], order.get("email")) if value]
    for event in WebhookEvent.objects.all():
        assert not any(value in json.dumps(event.body) for value in personal)


def test_a_data_request_gathers_what_aios_holds_about_the_customer(client, store):
    order = _payload("orders-create.json")
    _deliver(client, "orders/create", order, webhook_id="w-1")
    request = _payload("customers-data_request.json")
    request["customer"]["id"] = order["customer"]["id"]
    _deliver(client, "customers/data_request", request, webhook_id="w-2")
    _process_all()

    export = DataExport.objects.get()
    assert export.customer_external_id == order["customer"]["id"]
    assert [o["name"] for o in export.data["orders"]] == [order["name"]]


def test_a_shop_redaction_erases_the_shop_and_uninstall_is_recorded(client, store):
    _deliver(client, "products/create", _payload("products-create.json"), webhook_id="w-1")
    _deliver(client, "orders/create", _payload("orders-create.json"), webhook_id="w-2")
    _deliver(client, "app/uninstalled", _payload("app-uninstalled.json"), webhook_id="w-3")
    _deliver(client, "shop/redact", _payload("shop-redact.json"), webhook_id="w-4")
    _process_all()

    store.refresh_from_db()
    assert store.uninstalled_at is not None
    assert not Product.objects.exists() and not Order.objects.exists()
    assert not Customer.objects.exists()
    assert not MemoryItem.objects.filter(namespace="products", deleted_at__isnull=True).exists()
    assert {json.dumps(e.body) for e in WebhookEvent.objects.all()} == {'{"redacted": true}'}


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_deliveries_of_one_webhook_store_one_event_and_start_one_run(store):
    from django.test import Client

    def deliver() -> int:
        created = _payload("products-create.json")
        return _deliver(Client(), "products/create", created, webhook_id="same").status_code

    statuses = at_once([deliver] * 10)

    assert statuses == [200] * 10
    assert WebhookEvent.objects.count() == 1

    # Ten workers handed the same event (a redelivered task) apply it once: one run.
    event_id = WebhookEvent.objects.get().pk

    at_once([lambda: webhook_process(event_id=event_id)] * 10)
    assert WebhookEvent.objects.get().status == "processed"
    assert Run.objects.filter(agent__slug="catalog-writer").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_batch_whose_worker_stalls_past_its_lease_is_taken_over_and_applied_once(
    store, settings, monkeypatch
):
    """A worker paused (or hung) in the middle of a batch holds its events' row locks; once
    its lease is over, PostgreSQL ends its session, the batch rolls back, and another worker
    applies the events. The first, waking, can write nothing of it."""
    import threading
    import time

    from django.db import DatabaseError, connection
    from django.test import Client

    from catalog import services

    product = _payload("products-create.json")
    _deliver(Client(), "products/create", product, webhook_id="warm")
    _process_all()  # the embedding model loaded: no step of the batch is slow from now on
    settings.AIOS_WEBHOOK_BATCH_IDLE_SECONDS = 1.0
    _deliver(Client(), "products/update", {**product, "title": "Renamed"}, webhook_id="stall")
    event_id = WebhookEvent.objects.get(webhook_id="stall").pk
    stalled, woken, errors = threading.Event(), threading.Event(), []
    apply = services._process

    def stalls_in_the_first_worker(event):
        if threading.current_thread().name == "paused worker":
            stalled.set()
            woken.wait(10)
        apply(event)

    def first_worker():
        try:
            webhook_process(event_id=event_id)
        except DatabaseError as error:
            errors.append(error)
        finally:
            connection.close()

    monkeypatch.setattr(services, "_process", stalls_in_the_first_worker)
    paused = threading.Thread(target=first_worker, name="paused worker")
    paused.start()
    assert stalled.wait(10)
    time.sleep(2.5)  # past its lease
    webhook_process(event_id=event_id)  # another worker, handed the batch by the sweep
    taken_over = WebhookEvent.objects.get(pk=event_id).status
    woken.set()
    paused.join(10)

    assert taken_over == "processed"  # while the first was still paused
    assert Product.objects.get().title == "Renamed"
    assert len(errors) == 1  # the first one's session was gone: nothing of it was written


def test_a_payload_that_cannot_be_applied_is_marked_failed_with_the_reason(client, store):
    _deliver(client, "products/update", {"title": "No id"}, webhook_id="w-1")
    _deliver(
        client,
        "orders/create",
        _payload("orders-create.json") | {"created_at": "2026-13-45T00:00:00Z"},
        webhook_id="w-2",
    )

    _process_all()

    failed = WebhookEvent.objects.get(webhook_id="w-1")
    assert failed.status == "failed"
    assert failed.error == "the payload could not be applied: KeyError: 'id'"
    assert not Product.objects.exists()
    assert WebhookEvent.objects.get(webhook_id="w-2").status == "processed"  # bad date: none
    assert Order.objects.get().placed_at is None


def test_agents_set_to_a_topic_get_one_run_per_event_of_their_own_workspace_only(
    client, store, make_agent, other_workspace
):
    from agents.models import Agent

    subscribed = make_agent("demo.noop", slug="on-carts", webhook_topics=["carts/update"])
    make_agent("demo.noop", slug="off", webhook_topics=["carts/update"], enabled=False)
    theirs = {"slug": "theirs", "name": "t", "pipeline": "demo.noop"}
    Agent.objects.create(workspace=other_workspace, webhook_topics=["carts/update"], **theirs)
    _deliver(client, "carts/update", {"id": 7}, webhook_id="c-1")
    _process_all()
    event = WebhookEvent.objects.get()
    webhook_process(event_id=event.pk)  # a redelivered task: nothing twice

    run = Run.objects.get()
    assert run.agent == subscribed and run.trigger == "webhook"
    assert run.input == {"topic": "carts/update", "webhook_event_id": event.pk}
    assert (event.status, event.error) == ("processed", "")


def test_webhook_topics_are_validated_by_the_api(client, owner):
    api = Api(client, owner)

    agent = {"slug": "carts", "name": "Carts", "pipeline": "demo.noop"}
    created = api.send("post", "/agents", agent | {"webhook_topics": ["carts/update"]})
    refused = api.send("post", "/agents", agent | {"slug": "bad", "webhook_topics": ["DROP x"]})

    assert created.status_code == 201 and created.json()["webhook_topics"] == ["carts/update"]
    assert refused.status_code == 422 and refused.json()["detail"]


def test_an_event_that_breaks_processing_is_marked_failed_and_its_batch_goes_on(
    client, store, monkeypatch
):
    from catalog import services

    def broken(event):
        raise RuntimeError("a bug")

    monkeypatch.setitem(services.HANDLERS, "themes/publish", broken)
    _deliver(client, "themes/publish", {"id": 1}, webhook_id="w-1")
    _deliver(client, "products/create", _payload("products-create.json"), webhook_id="w-2")

    services.webhook_process_many(event_ids=list(WebhookEvent.objects.values_list("pk", flat=True)))

    statuses = dict(WebhookEvent.objects.values_list("webhook_id", "status"))
    assert statuses == {"w-1": "failed", "w-2": "processed"}
    assert "RuntimeError: a bug" in WebhookEvent.objects.get(webhook_id="w-1").error
    assert Product.objects.get().title == "Example T-Shirt"
