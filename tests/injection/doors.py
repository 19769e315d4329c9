"""The doors a stranger's text comes in by, as the tests open them: each returns the run it
started (queued, not yet driven), or the refusal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from agents.models import Run
from catalog.models import ContentBrief, Message, Product, WebhookEvent
from catalog.services import webhook_process
from memory.services import embed_pending
from tests.injection.conftest import PRODUCT, SHOP, WEBHOOK_SECRET

CUSTOMER = "ana@example.com"


def message_send(api, body: str, *, subject: str = "", name: str = "Ana"):
    """A customer's message through `POST /api/v1/messages`, as a helpdesk sends it."""
    message = {
        "store": SHOP,
        "customer_email": CUSTOMER,
        "customer_name": name,
        "subject": subject,
        "body": body,
        "order_ref": "#1001",
        "external_id": "m-1",
    }
    return api.send("post", "/messages", message)


def support_run(response) -> Run:
    assert response.status_code == 201, response.content
    message = Message.objects.get(pk=response.json()["id"])
    return Run.objects.get(agent__slug="support", input__message_id=message.pk)


def product_deliver(client, text: str):
    """A signed products/create webhook whose title and description are `text`, processed."""
    raw = json.dumps({**PRODUCT, "title": text, "body_html": text}).encode()
    digest = hmac.new(WEBHOOK_SECRET.encode(), raw, hashlib.sha256).digest()
    response = client.post(
        "/api/v1/webhooks/shopify",
        raw,
        content_type="application/json",
        HTTP_X_SHOPIFY_TOPIC="products/create",
        HTTP_X_SHOPIFY_HMAC_SHA256=base64.b64encode(digest).decode(),
        HTTP_X_SHOPIFY_SHOP_DOMAIN=SHOP,
        HTTP_X_SHOPIFY_WEBHOOK_ID="w-injection",
    )
    for event in WebhookEvent.objects.filter(status="received"):
        webhook_process(event_id=event.pk)
    return response


def writer_run(operator_client) -> Run:
    """The catalog writer's run on the product: started by the webhook when the description
    is thin, else by an operator's Describe."""
    product = Product.objects.get(external_id=PRODUCT["id"])
    if not Run.objects.filter(agent__slug="catalog-writer").exists():
        operator_client.post(f"/w/alice/catalog/products/{product.pk}/describe/")
    return Run.objects.get(agent__slug="catalog-writer")


def note_write(api, text: str):
    """A note in `policies`, where the support agent looks for what to answer."""
    note = f"Shipping policy note: {text}"[:20_000]
    response = api.send(
        "post",
        "/memory",
        {"namespace": "policies", "key": "shipping-note", "kind": "note", "content": note},
    )
    embed_pending()
    return response


def brief_send(api, url: str):
    return api.send(
        "post",
        "/briefs",
        {"topic": "Linen shirts for summer", "channels": ["blog"], "research_urls": [url]},
    )


def writer_brief(response) -> ContentBrief:
    assert response.status_code == 201, response.content
    return ContentBrief.objects.select_related("run").get(pk=response.json()["id"])


def page_of(text: str) -> str:
    return f"<html><body><h1>Linen</h1><p>{text}</p></body></html>"
