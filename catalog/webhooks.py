"""Receiving Shopify webhooks: authenticate, store durably, answer fast, process later.

A delivery is authenticated by `X-Shopify-Hmac-Sha256`, the base64 HMAC-SHA256 of the raw
body under the shop's webhook secret (either of two during a rotation), compared in
constant time. Nothing is stored for a delivery that fails it, nor for one PostgreSQL
cannot hold as it came (a `\u0000`, a lone surrogate, NaN) or that nests deeper than
MAX_NESTING levels: that is a 400, never a 500. A repeated `X-Shopify-Webhook-Id` is
acknowledged and dropped. A worker processes what was stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import DataError, IntegrityError, transaction
from django.utils.dateparse import parse_datetime

from catalog.models import StoreConnection, WebhookEvent

MAX_BODY = 2 * 1024 * 1024  # Shopify's own payloads stay far below this
# Shopify's payloads nest a handful of levels. A fixed limit far above that, rather than
# wherever the process's recursion limit happens to stop the parser or the JSON encoder,
# makes what is refused the same in every process.
MAX_NESTING = 100


@dataclass(frozen=True)
class Receipt:
    status: int
    detail: str
    event: WebhookEvent | None = None


TOO_LARGE = Receipt(413, f"the body is larger than {MAX_BODY // 1024} KB")


def length_refusal(content_length: str) -> Receipt | None:
    """What a declared Content-Length gets before the body is read: 413 over the limit,
    400 when it is not a number."""
    if not content_length:
        return None
    if not (content_length.isascii() and content_length.isdigit()):
        return Receipt(400, "the Content-Length header is not a number")
    return TOO_LARGE if int(content_length) > MAX_BODY else None


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def signature_valid(body: bytes, signature: str, secrets: list[str]) -> bool:
    # compare_digest refuses (TypeError) a str with anything but ASCII in it.
    return signature.isascii() and any(
        hmac.compare_digest(sign(body, secret), signature) for secret in secrets
    )


def webhook_receive(*, headers: dict[str, str], body: bytes) -> Receipt:
    """Headers by their lower-case names. 401 unauthenticated, 400 malformed, 413 too
    large, 200 stored (or already stored)."""
    if len(body) > MAX_BODY:
        return TOO_LARGE
    connection = _connection(headers.get("x-shopify-shop-domain", ""))
    signature = headers.get("x-shopify-hmac-sha256", "")
    if connection is None or not signature_valid(body, signature, connection.webhook_secrets):
        return Receipt(401, "the webhook signature does not verify")
    try:
        payload = json.loads(body, parse_constant=_not_json)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return Receipt(400, "the body is not JSON")
    if not isinstance(payload, dict):  # every topic's payload is one
        return Receipt(400, "the body is not a JSON object")
    webhook_id = headers.get("x-shopify-webhook-id", "").strip()
    topic = headers.get("x-shopify-topic", "").strip()
    if not webhook_id or not topic:
        return Receipt(400, "X-Shopify-Topic and X-Shopify-Webhook-Id are required")
    if _nested_deeper_than(MAX_NESTING, payload, body):
        return Receipt(400, UNSTORABLE)
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                connection=connection,
                workspace_id=connection.workspace_id,
                topic=topic[:100],
                webhook_id=webhook_id[:100],
                event_id=headers.get("x-shopify-event-id", "")[:100],
                triggered_at=parse_time(headers.get("x-shopify-triggered-at")),
                api_version=headers.get("x-shopify-api-version", "")[:20],
                body=payload,
            )
            transaction.on_commit(lambda: _process_soon(event.pk))
    except IntegrityError:
        return Receipt(200, "already received")
    except (DataError, RecursionError):
        return Receipt(400, UNSTORABLE)
    return Receipt(200, "received", event)


UNSTORABLE = (
    "the delivery cannot be stored as it came: a \\u0000 or a lone surrogate in its text, "
    "a number out of range, or nesting too deep"
)


def _connection(shop_domain: str) -> StoreConnection | None:
    shop = shop_domain.strip().lower()
    if not shop or "\x00" in shop:  # PostgreSQL cannot even be asked about a NUL
        return None
    return StoreConnection.objects.filter(shop_domain=shop).first()


def _nested_deeper_than(limit: int, payload: dict, body: bytes) -> bool:
    if body.count(b"{") + body.count(b"[") <= limit:  # fewer brackets than that many levels
        return False
    pending = [(payload, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def parse_time(value: Any) -> datetime | None:
    """A timestamp from a header or a payload, in UTC (one without an offset is taken as
    UTC); None when absent or not a valid one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = parse_datetime(value)
        if parsed is None:
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # well-formed but impossible: month 13, year 10000
        return None


def _process_soon(event_id: int) -> None:
    from catalog.tasks import webhook_batches

    webhook_batches.add(event_id)


# -- the Store page's "send test webhook" --------------------------------------------------

TEST_NOTE = "a test delivery from the Store page: verified and stored, not applied"


def test_delivery_receive(store: StoreConnection) -> Receipt:
    """A signed `products/update` through the real endpoint's code, so the owner sees that
    verification and storage work. Marked ignored in the same transaction, so the worker it
    is queued for finds it done: a test must not rewrite the catalog or start the writer."""
    from django.utils import timezone

    from catalog.models import EventStatus

    headers, body = _test_delivery(store)
    with transaction.atomic():
        receipt = webhook_receive(headers=headers, body=body)
        if receipt.event is not None:
            WebhookEvent.objects.filter(pk=receipt.event.pk).update(
                status=EventStatus.IGNORED, error=TEST_NOTE, processed_at=timezone.now()
            )
    return receipt


def _test_delivery(store: StoreConnection) -> tuple[dict[str, str], bytes]:
    """Headers (lower-case names) and body of a signed `products/update` for one of the
    store's products, or for a sample product when it has none."""
    from django.utils import timezone

    from catalog.models import Product

    product = (
        Product.objects.filter(connection=store, deleted_at__isnull=True)
        .prefetch_related("variants")
        .first()
    )
    now = timezone.now().isoformat()
    body = json.dumps({**_product_payload(product), "updated_at": now}).encode()
    headers = {
        "x-shopify-topic": "products/update",
        "x-shopify-hmac-sha256": sign(body, store.webhook_secrets[0]),
        "x-shopify-shop-domain": store.shop_domain,
        "x-shopify-webhook-id": f"aios-test-{uuid.uuid4()}",
        "x-shopify-triggered-at": now,
        "x-shopify-api-version": store.api_version,
    }
    return headers, body


def _product_payload(product) -> dict[str, Any]:
    if product is None:
        return {"id": 1, "title": "AIOS test product", "status": "draft", "variants": []}
    return {
        "id": product.external_id,
        "title": product.title,
        "handle": product.handle,
        "body_html": product.body_html,
        "status": product.status,
        "variants": [
            {"id": v.external_id, "title": v.title, "price": str(v.price or "")}
            for v in product.variants.all()
        ],
    }
