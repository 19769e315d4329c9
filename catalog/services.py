"""Store connections, and processing the webhook events they send.

Processing upserts the catalog and mirrors each product into memory as a fact
(`products/product:<id>`). An event older than what is stored (by `X-Shopify-Triggered-At`,
else the payload's `updated_at`) changes nothing: deliveries arrive out of order.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from approvals.audit import Actor, audit_record
from catalog.models import EventStatus, Product, StoreConnection, Variant, WebhookEvent
from memory.services import Source, memory_forget, memory_write

PRODUCT_NAMESPACE = "products"


@transaction.atomic
def store_connect(
    *,
    workspace,
    shop_domain: str,
    access_token: str,
    webhook_secrets: list[str],
    actor: Actor,
    api_base_url: str = "",
    outbound_url: str = "",
    languages: list[str] | None = None,
) -> StoreConnection:
    shop_domain = shop_domain.strip().lower()
    connection = StoreConnection(
        workspace=workspace,
        shop_domain=shop_domain,
        api_base_url=api_base_url or f"https://{shop_domain}",
        outbound_url=outbound_url,
        languages=languages or ["en"],
    )
    connection.access_token = access_token
    connection.webhook_secrets = webhook_secrets
    connection.full_clean(exclude=["workspace", "access_token_encrypted"])
    connection.save()
    audit_record(
        workspace_id=workspace.pk,
        actor=actor,
        action="store.connect",
        object_type="store",
        object_id=shop_domain,
        after={
            "api_base_url": connection.api_base_url,
            "languages": connection.languages,
            "webhook_secrets": len(webhook_secrets),
        },
    )
    return connection


# -- processing ---------------------------------------------------------------------------


def webhook_process(*, event_id: int) -> None:
    """Applies one stored event, once: the row lock makes a redelivered task wait, then find
    it processed."""
    with transaction.atomic():
        event = (
            WebhookEvent.objects.select_for_update(of=("self",))
            .select_related("connection__workspace")
            .filter(pk=event_id, status=EventStatus.RECEIVED)
            .first()
        )
        if event is None:
            return
        handler = HANDLERS.get(event.topic)
        if handler is None:
            event.status = EventStatus.IGNORED
            event.error = f"AIOS does not act on {event.topic!r} (yet); the event is kept"
        else:
            event.status = handler(event)
        event.processed_at = timezone.now()
        event.save(update_fields=["status", "error", "processed_at"])


def _changed_at(event: WebhookEvent) -> datetime | None:
    if event.triggered_at:
        return event.triggered_at
    value = event.body.get("updated_at")
    return parse_datetime(value) if isinstance(value, str) else None


def _source(event: WebhookEvent) -> Source:
    return Source("catalog", ref=f"{event.connection.shop_domain} {event.topic} {event.webhook_id}")


def _product_upsert(event: WebhookEvent) -> str:
    data, connection = event.body, event.connection
    changed_at = _changed_at(event)
    product = (
        Product.objects.select_for_update()
        .filter(connection=connection, external_id=data["id"])
        .first()
    )
    if (
        product
        and product.source_updated_at
        and changed_at
        and changed_at < product.source_updated_at
    ):
        return EventStatus.STALE
    product = product or Product(
        workspace=connection.workspace, connection=connection, external_id=data["id"]
    )
    product.title = str(data.get("title") or "")[:500]
    product.handle = str(data.get("handle") or "")[:255]
    product.body_html = data.get("body_html") or ""
    product.vendor = str(data.get("vendor") or "")[:255]
    product.product_type = str(data.get("product_type") or "")[:255]
    product.tags = str(data.get("tags") or "")[:1000]
    product.status = str(data.get("status") or "")[:20]
    product.source_updated_at = changed_at
    product.deleted_at = None
    product.raw = data
    product.save()
    _variants_upsert(product, data.get("variants") or [])
    memory_write(
        workspace=connection.workspace,
        namespace=PRODUCT_NAMESPACE,
        key=f"product:{product.external_id}",
        kind="fact",
        content=product_fact(product),
        metadata={"product_id": product.external_id, "handle": product.handle},
        source=_source(event),
    )
    return EventStatus.PROCESSED


def _variants_upsert(product: Product, variants: list[dict[str, Any]]) -> None:
    seen = []
    for data in variants:
        variant, _ = Variant.objects.update_or_create(
            product=product,
            external_id=data["id"],
            defaults={
                "title": str(data.get("title") or "")[:255],
                "sku": str(data.get("sku") or "")[:255],
                "price": _money(data.get("price")),
                "compare_at_price": _money(data.get("compare_at_price")),
                "inventory_item_id": data.get("inventory_item_id"),
                "inventory_quantity": data.get("inventory_quantity"),
                "position": data.get("position") or 1,
            },
        )
        seen.append(variant.pk)
    product.variants.exclude(pk__in=seen).delete()


def _money(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


def _product_delete(event: WebhookEvent) -> str:
    connection = event.connection
    product = Product.objects.filter(connection=connection, external_id=event.body["id"]).first()
    if product is None:
        return EventStatus.PROCESSED  # never known here: nothing to remove
    product.deleted_at = timezone.now()
    product.save(update_fields=["deleted_at"])
    memory_forget(
        workspace=connection.workspace,
        namespace=PRODUCT_NAMESPACE,
        key=f"product:{product.external_id}",
        actor=_source(event).actor,
    )
    return EventStatus.PROCESSED


def product_fact(product: Product) -> str:
    """What memory knows of a product: its words and prices, not its stock (which changes
    all day and is read from the catalog when it matters)."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", product.body_html or ""))
    description = " ".join(text.split())
    lines = [f"{product.title} ({product.product_type or 'product'} by {product.vendor or 'us'})."]
    if description:
        lines.append(description)
    prices = [f"{v.title}: {v.price}" for v in product.variants.all() if v.price is not None]
    if prices:
        lines.append("Variants and prices: " + "; ".join(prices) + ".")
    if product.tags:
        lines.append(f"Tags: {product.tags}.")
    return "\n".join(lines)


HANDLERS = {
    "products/create": _product_upsert,
    "products/update": _product_upsert,
    "products/delete": _product_delete,
}
