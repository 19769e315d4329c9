"""The webhook endpoint as daphne serves it: the ASGI fast lane in front of Django, with the
same answers as the API route (401/400/413/200, nothing stored on a refusal)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest

from catalog.models import WebhookEvent
from catalog.webhooks import MAX_BODY, sign
from tests.catalog.conftest import NEW_SECRET, SHOP
from tests.catalog.test_webhooks import HOOKS
from tests.helpers import web_serving

pytestmark = pytest.mark.django_db(transaction=True)

BODY = (HOOKS / "products-update.json").read_bytes()


@pytest.fixture(scope="module")
def served(django_db_setup, django_db_blocker):
    with web_serving(processes=1) as (url, _process):
        yield url


def post(url: str, body: bytes, *, secret=NEW_SECRET, shop=SHOP, **extra) -> tuple[int, dict]:
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "products/update",
        "X-Shopify-Hmac-Sha256": sign(body, secret),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        **extra,
    }
    request = urllib.request.Request(f"{url}/api/v1/webhooks/shopify", body, headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_signed_delivery_is_stored_once_even_when_sent_twice(served, store):
    first = post(served, BODY, **{"X-Shopify-Webhook-Id": "same"})
    again = post(served, BODY, **{"X-Shopify-Webhook-Id": "same"})

    assert first == (200, {"detail": "received"})
    assert again == (200, {"detail": "already received"})
    event = WebhookEvent.objects.get()
    assert (event.topic, event.webhook_id, event.body["id"]) == (
        "products/update",
        "same",
        json.loads(BODY)["id"],
    )


def test_refusals_are_json_with_a_reason_and_store_nothing(served, store):
    answers = [
        post(served, BODY, secret="not-the-secret"),
        post(served, BODY, shop="unknown.myshopify.com"),
        post(served, b"{not json", secret=NEW_SECRET),
        post(served, BODY, **{"X-Shopify-Topic": ""}),
        post(served, b"x" * (MAX_BODY + 1)),
        post(served, BODY, Host="attacker.example"),
    ]

    assert [status for status, _ in answers] == [401, 401, 400, 400, 413, 400]
    assert all(detail["detail"] for _, detail in answers)
    assert WebhookEvent.objects.count() == 0


def test_other_methods_and_paths_still_reach_django(served):
    request = urllib.request.Request(f"{served}/api/v1/webhooks/shopify", method="GET")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)

    assert refused.value.code == 405
