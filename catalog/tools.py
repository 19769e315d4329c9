"""What the commerce pipelines read and record, as journaled tools (`ctx.tool(...)`).

The catalog changes all day; a step reads it through these so that a retry or a replay sees
what the original step saw. Every tool takes the run's workspace id from the pipeline, never
from its input, and finds nothing outside that workspace.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.pipelines import PermanentError
from agents.tools import tool
from catalog import html
from catalog.models import (
    Alert,
    AlertStatus,
    Message,
    Order,
    Product,
    StoreConnection,
    Variant,
)

SALES_WINDOW_DAYS = 30
POLICY_KEYS = ("shipping", "returns")


def found(queryset, noun: str, identifier: Any):
    """The one object a workspace-scoped query finds, or a PermanentError naming it: an id
    from another workspace is as unknown as one that never existed."""
    result = queryset.first()
    if result is None:
        raise PermanentError(f"no {noun} {identifier} in this workspace")
    return result


def _product(workspace_id: int, product_id: int) -> Product:
    products = Product.objects.filter(
        workspace_id=workspace_id, external_id=product_id, deleted_at__isnull=True
    )
    return found(products.select_related("connection", "workspace"), "product", product_id)


@tool("catalog.product")
def product_facts(*, workspace_id: int, product_id: int) -> dict[str, Any]:
    """A product as a description writer needs it: its attributes, options and prices."""
    from catalog.services import product_fact

    product = _product(workspace_id, product_id)
    variants = list(product.variants.all())
    prices = sorted({v.price for v in variants if v.price is not None})
    return {
        "product_id": product.external_id,
        "title": product.title,
        "vendor": product.vendor,
        "product_type": product.product_type,
        "tags": [t.strip() for t in product.tags.split(",") if t.strip()],
        "options": [
            {"name": o.get("name", ""), "values": o.get("values", [])}
            for o in (product.raw.get("options") or [])
            if o.get("name") and o.get("name") != "Title"
        ],
        "prices": [str(p) for p in prices],
        "body_text": html.visible_text(product.body_html),
        "facts": product_fact(product),
        "shop_name": product.workspace.name,
        "languages": product.connection.languages or ["en"],
        "brand_namespace": product.connection.brand_namespace,
    }


@tool("catalog.eval_product")
def eval_product_facts(*, workspace_id: int, item: dict[str, Any]) -> dict[str, Any]:
    """An eval's product as the description writer sees one of the shop's: the item's own
    fields, the shop's name, languages and brand voice (nothing is read from or written to
    the catalog)."""
    from aios_site.accounts.models import Workspace
    from catalog.services import facts_text

    workspace = Workspace.objects.get(pk=workspace_id)
    connection = StoreConnection.objects.filter(workspace_id=workspace_id).order_by("pk").first()
    variants = item.get("variants") or []
    prices = sorted({Decimal(v["price"]) for v in variants if v.get("price")})
    return {
        "product_id": item["id"],
        "title": item["title"],
        "vendor": item.get("vendor", ""),
        "product_type": item.get("product_type", ""),
        "tags": [t.strip() for t in (item.get("tags") or "").split(",") if t.strip()],
        "options": item.get("options") or [],
        "prices": [str(p) for p in prices],
        "body_text": html.visible_text(item.get("body_html") or ""),
        "facts": facts_text(
            title=item["title"],
            product_type=item.get("product_type", ""),
            vendor=item.get("vendor", ""),
            body_html=item.get("body_html", ""),
            prices=[(v.get("title", ""), v["price"]) for v in variants if v.get("price")],
            tags=item.get("tags", ""),
            options=item.get("options") or [],
        ),
        "shop_name": workspace.name,
        "languages": (connection.languages if connection else None) or ["en"],
        "brand_namespace": connection.brand_namespace if connection else "brand",
    }


def description_is_thin(product: Product, *, min_words: int = 25) -> bool:
    return html.word_count(product.body_html) < min_words


# -- stock ---------------------------------------------------------------------------------


def daily_sales(variant: Variant, *, now=None) -> float:
    """Units a day over the last SALES_WINDOW_DAYS of orders (cancelled ones left out)."""
    since = (now or timezone.now()) - timedelta(days=SALES_WINDOW_DAYS)
    orders = Order.objects.filter(
        connection_id=variant.product.connection_id,
        placed_at__gte=since,
        cancelled_at__isnull=True,
        line_items__contains=[{"variant_id": variant.external_id}],
    ).values_list("line_items", flat=True)
    sold = sum(
        int(item.get("quantity") or 0)
        for items in orders
        for item in items
        if item.get("variant_id") == variant.external_id
    )
    return sold / SALES_WINDOW_DAYS


def days_of_cover(quantity: int | None, per_day: float) -> float | None:
    """How long the stock lasts at this pace; None when nothing sold (no pace to go by)."""
    if quantity is None or per_day <= 0:
        return None
    return max(quantity, 0) / per_day


@tool("catalog.stock")
def stock(*, workspace_id: int, variant_id: int) -> dict[str, Any]:
    variants = Variant.objects.filter(product__workspace_id=workspace_id, external_id=variant_id)
    variant = found(variants.select_related("product"), "variant", variant_id)
    per_day = daily_sales(variant)
    return {
        "variant_id": variant.external_id,
        "product_id": variant.product.external_id,
        "title": f"{variant.product.title} / {variant.title}"
        if variant.title != "Default Title"
        else variant.product.title,
        "quantity": variant.inventory_quantity,
        "continues_selling": variant.inventory_policy == "continue",
        "product_status": variant.product.status,
        "daily_sales": round(per_day, 3),
        "days_of_cover": None
        if (cover := days_of_cover(variant.inventory_quantity, per_day)) is None
        else round(cover, 1),
    }


@tool("catalog.alert_raise", takes_run=True)
def alert_raise(*, run, workspace_id: int, variant_id: int, **fields: Any) -> int:
    """Opens the variant's alert, or brings its open one up to date; returns its id. The
    alert names the run that raised it (`run`, outside the journaled arguments)."""
    variant = Variant.objects.select_related("product").get(
        product__workspace_id=workspace_id, external_id=variant_id
    )
    values = {key: fields[key] for key in ("kind", "quantity", "daily_sales", "message")}
    values.update(days_of_cover=fields.get("days_of_cover"), threshold_days=fields["threshold"])
    open_alerts = Alert.objects.filter(variant=variant, status=AlertStatus.OPEN)
    if open_alerts.update(**values):
        return open_alerts.get().pk
    try:
        with transaction.atomic():
            return Alert.objects.create(
                workspace_id=workspace_id,
                connection_id=variant.product.connection_id,
                variant=variant,
                run_id=run.pk if run is not None else None,
                **values,
            ).pk
    except IntegrityError:  # raised meanwhile by another run
        return open_alerts.get().pk


def alerts_resolve(variant: Variant) -> int:
    """Stock came back: its open alert is over."""
    return Alert.objects.filter(variant=variant, status=AlertStatus.OPEN).update(
        status=AlertStatus.RESOLVED, resolved_at=timezone.now()
    )


# -- customer messages ------------------------------------------------------------------------


def _order_status(order: Order) -> str:
    if order.cancelled_at:
        return "cancelled"
    return {"fulfilled": "shipped", "partial": "partially_shipped"}.get(
        order.fulfillment_status or "", "processing"
    )


def _order_of(message: Message) -> dict[str, Any] | None:
    """The order the message names, only if it is the same customer's: an order number typed
    by someone else gets no answer about it."""
    reference = message.order_ref.strip().lstrip("#")
    if not reference:
        return None
    order = (
        Order.objects.filter(
            connection_id=message.connection_id, name__in=[f"#{reference}", reference]
        )
        .filter(email__iexact=message.customer_email)
        .first()
    )
    if order is None:
        return None
    return {
        "name": order.name,
        "status": _order_status(order),
        "financial_status": order.financial_status,
        "placed_at": order.placed_at.date().isoformat() if order.placed_at else None,
        "total_price": str(order.total_price) if order.total_price is not None else None,
        "currency": order.currency,
    }


@tool("catalog.message")
def message_facts(*, workspace_id: int, message_id: int) -> dict[str, Any]:
    messages = Message.objects.filter(workspace_id=workspace_id, pk=message_id)
    message = found(messages.select_related("connection", "workspace"), "message", message_id)
    return {
        "message_id": message.pk,
        "subject": message.subject,
        "body": message.body,
        "customer_name": message.customer_name,
        "order": _order_of(message),
        "order_ref": message.order_ref,
        "shop_name": message.workspace.name,
        "languages": message.connection.languages or ["en"],
        "policies": _policies(workspace_id),
    }


@tool("catalog.eval_message")
def eval_message_facts(*, workspace_id: int, item: dict[str, Any]) -> dict[str, Any]:
    """An eval item as the reply pipeline sees a message: the shop's own name, languages and
    policies, and, for an order it names, an order in transit (eval orders are invented, so
    none is in the shop; the order-status template is what gets measured)."""
    from aios_site.accounts.models import Workspace

    workspace = Workspace.objects.get(pk=workspace_id)
    connection = StoreConnection.objects.filter(workspace_id=workspace_id).order_by("pk").first()
    reference = (item.get("order") or "").strip()
    order = None
    if reference:
        order = {
            "name": reference if reference.startswith("#") else f"#{reference}",
            "status": "shipped",
            "financial_status": "paid",
            "placed_at": (timezone.now() - timedelta(days=3)).date().isoformat(),
            "total_price": "",
            "currency": "",
        }
    return {
        "message_id": None,
        "subject": item.get("subject", ""),
        "body": item.get("body", ""),
        "customer_name": "",
        "order": order,
        "order_ref": reference,
        "shop_name": workspace.name,
        "languages": (connection.languages if connection else None) or ["en"],
        "policies": _policies(workspace_id),
    }


def _policies(workspace_id: int) -> dict[str, Any]:
    """The shop's shipping and returns policies from memory, with their structured numbers."""
    from memory.selectors import memory_current

    found = {}
    for key in POLICY_KEYS:
        item = memory_current(workspace_id=workspace_id, namespace="policies", key=key)
        if item is not None:
            found[key] = {
                "source": f"policies/{key}@{item.version}",
                "content": item.content,
                "metadata": item.metadata or {},
            }
    return found


@tool("catalog.message_annotate")
def message_annotate(
    *, workspace_id: int, message_id: int, language: str, intent: str, confidence: float | None
) -> bool:
    Message.objects.filter(workspace_id=workspace_id, pk=message_id).update(
        language=language[:10], intent=intent[:50], confidence=confidence
    )
    return True
