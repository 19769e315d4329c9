"""Shopify's product CSV imported (the three sample catalogs), and customer messages."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Message, Product
from memory.models import MemoryItem
from tests.catalog.conftest import SHOP
from tests.helpers import SHARED_DATA
from tests.memory.test_api import Api

pytestmark = pytest.mark.django_db

CATALOGS = SHARED_DATA / "shopify-products"


def _import(name: str) -> str:
    out = StringIO()
    call_command("catalog", "import", str(CATALOGS / name), "--store", SHOP, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("name", ["apparel.csv", "home-and-garden.csv", "jewelery.csv"])
def test_each_sample_catalog_imports_cleanly_with_its_products_and_variants(store, name):
    out = _import(name)

    assert out.rstrip().endswith(f"imported 20 products into {SHOP}")
    assert "[##############################] 20/20" in out
    assert Product.objects.count() == 20
    assert all(p.variants.exists() for p in Product.objects.all())
    assert MemoryItem.objects.filter(namespace="products", source_kind="catalog").count() == 20


def test_importing_the_same_file_again_updates_in_place(store):
    _import("jewelery.csv")
    variants = sorted(Product.objects.values_list("variants__external_id", flat=True))

    _import("jewelery.csv")

    assert Product.objects.count() == 20
    assert sorted(Product.objects.values_list("variants__external_id", flat=True)) == variants
    assert set(MemoryItem.objects.values_list("version", flat=True)) == {1}


def test_a_file_that_is_not_a_product_csv_is_refused(store, tmp_path):
    bad = tmp_path / "orders.csv"
    bad.write_text("Name,Email\n#1001,a@b.example\n")

    with pytest.raises(CommandError, match="not a Shopify product CSV: missing Handle"):
        call_command("catalog", "import", str(bad), "--store", SHOP, stdout=StringIO())


def test_a_message_is_stored_once_per_external_id(client, operator, store):
    api = Api(client, operator)
    body = {
        "store": SHOP,
        "customer_email": "ana@example.com",
        "customer_name": "Ana",
        "subject": "¿Dónde está mi pedido?",
        "body": "Hola, mi pedido #1001 no ha llegado.",
        "order_ref": "#1001",
        "external_id": "zendesk-77",
    }

    first = api.send("post", "/messages", body)
    again = api.send("post", "/messages", body)

    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"] and Message.objects.count() == 1
    assert [m["subject"] for m in api.get("/messages").json()] == ["¿Dónde está mi pedido?"]


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"store": "unknown.myshopify.com"}, 400),
        ({"customer_email": "not-an-email"}, 422),
        ({"body": ""}, 422),
    ],
)
def test_a_bad_message_is_refused_with_a_detail(client, operator, store, change, status):
    body = {"store": SHOP, "customer_email": "ana@example.com", "body": "Hello"} | change

    response = Api(client, operator).send("post", "/messages", body)

    assert response.status_code == status and response.json()["detail"]
    assert Message.objects.count() == 0


def test_viewers_read_messages_but_cannot_post_them(client, viewer, outsider, store):
    body = {"store": SHOP, "customer_email": "ana@example.com", "body": "Hello"}

    assert Api(client, viewer).send("post", "/messages", body).status_code == 403
    assert Api(client, outsider).send("post", "/messages", body).status_code == 400
    assert Api(client, viewer).get("/messages").json() == []
