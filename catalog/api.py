"""The catalog API: store connections, the Shopify webhook endpoint, products, orders,
messages, stock alerts, events."""

from __future__ import annotations

from django.http import Http404
from ninja import Query, Router, Status
from ninja.errors import HttpError

from aios_site.accounts.auth import request_workspace
from aios_site.accounts.models import Role
from aios_site.paging import offset_param
from approvals.audit import Actor
from catalog import selectors, services
from catalog.models import AlertStatus, Order, StoreConnection, WebhookEvent
from catalog.schemas import (
    AlertOut,
    MessageIn,
    MessageOut,
    OrderOut,
    ProductOut,
    StoreIn,
    StoreOut,
    WebhookEventOut,
)
from catalog.webhooks import length_refusal, webhook_receive

router = Router(tags=["catalog"])


@router.post("/stores", response={201: StoreOut})
def store_create(request, body: StoreIn):
    """Connects a shop (owners). Its access token and webhook secrets are stored encrypted."""
    membership = request_workspace(request, role=Role.OWNER)
    if StoreConnection.objects.filter(shop_domain=body.shop_domain.lower()).exists():
        raise HttpError(409, f"{body.shop_domain} is connected already")
    store = services.store_connect(
        workspace=membership.workspace,
        shop_domain=body.shop_domain,
        access_token=body.access_token,
        webhook_secrets=body.webhook_secrets,
        api_base_url=body.api_base_url or "",
        outbound_url=body.outbound_url or "",
        languages=body.languages,
        currency=body.currency,
        actor=Actor.of_user(membership.user),
    )
    return Status(201, store)


@router.get("/stores", response=list[StoreOut])
def store_list(request):
    membership = request_workspace(request)
    return StoreConnection.objects.filter(workspace_id=membership.workspace_id).order_by("pk")


@router.post("/webhooks/shopify", auth=None, response={200: dict, 400: dict, 401: dict, 413: dict})
def shopify_webhook(request):
    """Shopify's webhooks (HMAC-authenticated; no token). 200 once stored, 401 when the
    signature does not verify (nothing stored), 400 malformed (not a JSON object, no topic
    or webhook id, a value PostgreSQL cannot hold, nested over 100 levels), 413 over 2 MiB."""
    receipt = length_refusal(request.headers.get("Content-Length", ""))
    if receipt is None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        receipt = webhook_receive(headers=headers, body=request.body)
    return Status(receipt.status, {"detail": receipt.detail})


@router.get("/webhook-events", response=list[WebhookEventOut])
def webhook_event_list(request, topic: str | None = None, limit: int = Query(50, ge=1, le=200)):
    membership = request_workspace(request)
    events = WebhookEvent.objects.filter(workspace_id=membership.workspace_id)
    if topic:
        events = events.filter(topic=topic)
    return events.select_related("connection").defer("body")[:limit]


def _with_description_status(rows: list[selectors.ProductRow]) -> list:
    """The products, each carrying what ProductOut adds from its row."""
    for row in rows:
        row.product.description_status = row.description_status
        row.product.pending_proposals = len(row.pending)
    return [row.product for row in rows]


@router.get("/products", response=list[ProductOut])
def product_list(request, limit: int = Query(50, ge=1, le=200), offset: int = offset_param()):
    membership = request_workspace(request)
    products = selectors.product_list(workspace_id=membership.workspace_id)
    return _with_description_status(
        selectors.product_rows(
            workspace_id=membership.workspace_id, products=products[offset : offset + limit]
        )
    )


@router.get("/products/{int:product_id}", response=ProductOut)
def product_detail(request, product_id: int):
    """By the shop's product id."""
    membership = request_workspace(request)
    products = selectors.product_list(workspace_id=membership.workspace_id)
    rows = selectors.product_rows(
        workspace_id=membership.workspace_id, products=products.filter(external_id=product_id)[:1]
    )
    if not rows:
        raise Http404("No such product.")
    return _with_description_status(rows)[0]


@router.get("/orders", response=list[OrderOut])
def order_list(request, limit: int = Query(50, ge=1, le=200), offset: int = offset_param()):
    """Newest first."""
    membership = request_workspace(request)
    orders = Order.objects.filter(workspace_id=membership.workspace_id).select_related("connection")
    return orders[offset : offset + limit]


@router.post("/messages", response={201: MessageOut, 200: MessageOut})
def message_create(request, body: MessageIn):
    """A customer's message from a helpdesk or email connector; a repeated `external_id`
    answers 200 with the message already stored."""
    membership = request_workspace(request, role=Role.OPERATOR)
    message, created = services.message_receive(workspace=membership.workspace, **body.dict())
    rows = selectors.message_rows(workspace_id=membership.workspace_id, messages=[message])
    return Status(201 if created else 200, _with_reply_status(rows)[0])


def _with_reply_status(rows: list[selectors.MessageRow]) -> list:
    """The messages, each carrying what MessageOut adds from its row."""
    for row in rows:
        row.message.reply_status = row.reply_status
    return [row.message for row in rows]


@router.get("/messages", response=list[MessageOut])
def message_list(request, limit: int = Query(50, ge=1, le=200), offset: int = offset_param()):
    """Newest first, each with the state of its reply."""
    membership = request_workspace(request)
    messages = selectors.message_list(workspace_id=membership.workspace_id)
    rows = selectors.message_rows(
        workspace_id=membership.workspace_id, messages=messages[offset : offset + limit]
    )
    return _with_reply_status(rows)


@router.get("/alerts", response=list[AlertOut])
def alert_list(
    request,
    status: str | None = None,
    limit: int = Query(50, ge=1, le=200),
    offset: int = offset_param(),
):
    """Stock alerts, newest first; `status` is `open` or `resolved` (default: both)."""
    membership = request_workspace(request)
    if status is not None and status not in AlertStatus.values:
        raise HttpError(400, f"status is one of {', '.join(AlertStatus.values)}")
    alerts = selectors.alert_list(workspace_id=membership.workspace_id, status=status)
    return alerts[offset : offset + limit]
