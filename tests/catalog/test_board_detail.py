"""The board's detail pane: beside a reply, the customer's message in full, their order and
their earlier messages; beside a price or a description, the product as the shop has it;
only of the member's own workspace."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Message, Order
from tests.catalog.test_views import message, product, proposal, reply_proposal

pytestmark = pytest.mark.django_db


def test_a_reply_s_detail_shows_the_customer_their_order_and_earlier_messages(owner_client, store):
    store.currency = "EUR"
    store.save()
    Order.objects.create(
        workspace=store.workspace,
        connection=store,
        external_id=1,
        name="#1016",
        total_price="64.00",
        currency="EUR",
        fulfillment_status="fulfilled",
    )
    earlier = message(store, "Can I change the address?", subject="Address", order_ref="#1016")
    Message.objects.filter(pk=earlier.pk).update(received_at=timezone.now() - timedelta(days=1))
    latest = message(store, "My parcel has not arrived.", subject="Late", order_ref="#1016")
    card = reply_proposal(store, latest, "It left on Monday.")

    detail = owner_client.get(
        f"/w/alice/board/{card.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="detail"
    ).content.decode()

    assert "<html" not in detail  # the pane, not a page
    assert "Reply to Carla about order #1016" in detail
    assert "My parcel has not arrived." in detail
    assert "Order #1016" in detail and "€64.00, fulfilled" in detail
    assert "Earlier messages from Carla" in detail and "Address" in detail


def test_a_price_s_detail_shows_the_product_as_the_shop_has_it(owner_client, store):
    shirt = product(store, 7, title="Linen shirt")
    card = proposal(
        store,
        "catalog-writer",
        "catalog.change_price",
        "variant:70",
        {"variant_id": 70, "price": "25"},
    )

    page = owner_client.get(f"/w/alice/board/{card.pk}/").content.decode()

    assert "<html" in page  # a page of its own, as a phone opens it
    assert f'href="/w/alice/catalog/#product-{shirt.pk}">Linen shirt</a>' in page
    assert "Small: $19.99" in page


def test_another_workspace_s_card_has_no_detail(outsider_client, store):
    card = reply_proposal(store, message(store), "Hello.")

    assert outsider_client.get(f"/w/alice/board/{card.pk}/").status_code == 404
