"""The catalog's reads over the API: stock alerts, the state of products' descriptions, the
state of messages' replies; bad input and tenancy."""

from __future__ import annotations

import pytest
from django.utils import timezone

from agents.models import Agent
from catalog.models import StoreConnection
from tests.catalog.test_views import (
    alert,
    describe_proposal,
    message,
    product,
    proposal,
    reply_proposal,
    run_of,
)
from tests.memory.test_api import Api

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, viewer):
    return Api(client, viewer)


@pytest.fixture
def theirs(other_workspace):
    """Another workspace's store."""
    return StoreConnection.objects.create(
        workspace=other_workspace,
        shop_domain="bob.myshopify.com",
        api_base_url="https://bob.myshopify.com",
        access_token_encrypted="x",
        languages=["en"],
    )


# -- alerts -----------------------------------------------------------------------------------


def test_alerts_are_listed_newest_first_with_their_variant_and_run(api, store):
    mug = product(store, 1, "Mug")
    small, large = mug.variants.order_by("position", "pk")
    older = alert(small, kind="sold_out", quantity=0, days_of_cover=None, daily_sales=0)
    newer = alert(large, run_id=12)

    listed = api.get("/alerts").json()

    assert [a["id"] for a in listed] == [newer.pk, older.pk]
    assert listed[0] == {
        "id": newer.pk,
        "kind": "low_stock",
        "product_id": 1,
        "variant_id": large.external_id,
        "title": "Mug / Large",
        "quantity": 2,
        "days_of_cover": 1.0,
        "daily_sales": 2.0,
        "threshold_days": 7.0,
        "message": "Mug / Large: 2 left, about 1 day of sales",
        "status": "open",
        "created_at": listed[0]["created_at"],
        "resolved_at": None,
        "run_id": 12,
    }
    assert (listed[1]["kind"], listed[1]["days_of_cover"]) == ("sold_out", None)


def test_alerts_filter_by_status(api, store):
    mug = product(store, 1, "Mug")
    small, large = mug.variants.order_by("position", "pk")
    still_open = alert(small)
    resolved = alert(large, status="resolved", resolved_at=timezone.now())

    assert [a["id"] for a in api.get("/alerts", status="open").json()] == [still_open.pk]
    [listed] = api.get("/alerts", status="resolved").json()
    assert (listed["id"], listed["status"]) == (resolved.pk, "resolved")
    assert listed["resolved_at"] is not None


def test_an_unknown_alert_status_is_400_with_a_detail(api, store):
    response = api.get("/alerts", status="closed")

    assert response.status_code == 400
    assert response.json() == {"detail": "status is one of open, resolved"}


def test_another_workspace_s_alerts_are_not_listed(api, store, theirs):
    alert(product(theirs, 9, "Their mug").variants.first())

    assert api.get("/alerts").json() == []


# -- products ---------------------------------------------------------------------------------


def test_products_carry_their_description_status_and_pending_proposals(api, store):
    store.languages = ["en", "es", "fr"]
    store.save(update_fields=["languages"])
    thin = product(store, 1, "Thin shirt", body_html="<p>A shirt.</p>")
    thin.descriptions = {"fr": "<p>Une chemise.</p>"}
    thin.save(update_fields=["descriptions"])
    describe_proposal(store, thin, ["es"])
    describe_proposal(store, thin, ["en"], status="rejected")  # decided: no longer proposed
    product(store, 2, "Full shirt")

    listed = {p["id"]: p for p in api.get("/products").json()}

    assert listed[1]["description_status"] == {"en": "thin", "es": "proposed", "fr": "written"}
    assert listed[1]["pending_proposals"] == 1
    assert listed[2]["description_status"] == {"en": "ok", "es": "missing", "fr": "missing"}
    assert listed[2]["pending_proposals"] == 0
    assert listed[1]["title"] == "Thin shirt" and len(listed[1]["variants"]) == 2
    detail = api.get("/products/1").json()
    assert (detail["description_status"], detail["pending_proposals"]) == (
        listed[1]["description_status"],
        1,
    )


def test_a_description_the_shop_changed_after_aios_wrote_it_is_the_shop_s_again(api, store):
    made = product(store, 1, "Shirt", body_html="<p>Edited in the shop.</p>")
    made.descriptions = {"en": "<p>What AIOS wrote, long ago.</p>"}
    made.save(update_fields=["descriptions"])

    assert api.get("/products/1").json()["description_status"] == {"en": "thin"}


def test_the_product_list_costs_the_same_queries_for_one_product_or_ten(
    api, store, django_assert_num_queries
):
    for n in range(1, 11):
        describe_proposal(store, product(store, n, f"Shirt {n}"), ["en"])

    # token, its last use, membership, products, variants, pending proposals
    with django_assert_num_queries(6):
        assert len(api.get("/products").json()) == 10


def test_another_workspace_s_product_is_404_with_a_detail(api, store, theirs):
    product(theirs, 9, "Their shirt")

    response = api.get("/products/9")

    assert response.status_code == 404 and response.json() == {"detail": "Not Found"}


# -- messages ---------------------------------------------------------------------------------


def test_messages_carry_their_classification_and_reply_status(api, store):
    quiet = message(store, body="Just saying hi")
    drafting = message(store, body="Do you ship to Spain?")
    run_of(store, "support", {"message_id": drafting.pk})
    waiting = message(store, body="Where is my order?", language="es", intent="track_order")
    waiting.confidence = 0.9
    waiting.save(update_fields=["confidence"])
    reply_proposal(store, waiting, "Está en camino.")
    sent = message(store, body="Refund please")
    reply_proposal(store, sent, "First draft", status="rejected")
    reply_proposal(store, sent, "Done.", status="committed")
    given_up = message(store, body="???")
    run_of(store, "support", {"message_id": given_up.pk}, status="failed")

    listed = {m["id"]: m for m in api.get("/messages").json()}

    assert {pk: m["reply_status"] for pk, m in listed.items()} == {
        quiet.pk: "none",
        drafting.pk: "drafting",
        waiting.pk: "pending",
        sent.pk: "sent",
        given_up.pk: "failed",
    }
    assert (listed[waiting.pk]["language"], listed[waiting.pk]["intent"]) == ("es", "track_order")
    assert listed[waiting.pk]["confidence"] == 0.9
    assert (listed[quiet.pk]["language"], listed[quiet.pk]["confidence"]) == ("", None)


def test_a_new_run_after_a_rejected_reply_is_drafting_again(api, store):
    note = message(store)
    reply_proposal(store, note, "Too curt.", status="rejected")
    run_of(store, "support", {"message_id": note.pk}, status="queued")

    [listed] = api.get("/messages").json()

    assert listed["reply_status"] == "drafting"


def test_another_workspace_s_messages_and_replies_are_not_listed(api, store, theirs):
    message(theirs, body="Not yours")
    mine = message(store)
    # Their proposal naming my message's id changes nothing here.
    Agent.objects.create(workspace=theirs.workspace, slug="support", name="Support", pipeline="x")
    proposal(theirs, "support", "catalog.send_reply", f"message:{mine.pk}", {}, status="committed")

    assert [(m["id"], m["reply_status"]) for m in api.get("/messages").json()] == [
        (mine.pk, "none")
    ]
