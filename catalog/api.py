"""The catalog API: store connections, the Shopify webhook endpoint, products, events."""

from __future__ import annotations

from django.db.models import Prefetch
from django.http import Http404
from ninja import Query, Router, Status
from ninja.errors import HttpError

from aios_site.accounts.auth import request_workspace
from aios_site.accounts.models import Role
from approvals.audit import Actor
from catalog import services
from catalog.models import Message, Order, Product, StoreConnection, Variant, WebhookEvent
from catalog.schemas import (
    MessageIn,
    MessageOut,
    OrderOut,
    ProductOut,
    StoreIn,
    StoreOut,
    WebhookEventOut,
)
from catalog.webhooks import MAX_BODY, webhook_receive

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
    signature does not verify (nothing stored), 400 malformed, 413 too large."""
    declared = request.headers.get("Content-Length", "0")
    if declared.isdigit() and int(declared) > MAX_BODY:  # refused before reading it
        return Status(413, {"detail": f"the body is larger than {MAX_BODY // 1024} KB"})
    receipt = webhook_receive(
        headers={k.lower(): v for k, v in request.headers.items()}, body=request.body
    )
    return Status(receipt.status, {"detail": receipt.detail})


@router.get("/webhook-events", response=list[WebhookEventOut])
def webhook_event_list(request, topic: str | None = None, limit: int = Query(50, ge=1, le=200)):
    membership = request_workspace(request)
    events = WebhookEvent.objects.filter(workspace_id=membership.workspace_id)
    if topic:
        events = events.filter(topic=topic)
    return events.select_related("connection").defer("body")[:limit]


def _products(workspace_id: int):
    return (
        Product.objects.filter(workspace_id=workspace_id, deleted_at__isnull=True)
        .select_related("connection")
        .prefetch_related(Prefetch("variants", queryset=Variant.objects.order_by("position")))
    )


@router.get("/products", response=list[ProductOut])
def product_list(request, limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0)):
    membership = request_workspace(request)
    return _products(membership.workspace_id)[offset : offset + limit]


@router.get("/products/{int:product_id}", response=ProductOut)
def product_detail(request, product_id: int):
    """By the shop's product id."""
    membership = request_workspace(request)
    product = _products(membership.workspace_id).filter(external_id=product_id).first()
    if product is None:
        raise Http404("No such product.")
    return product


@router.get("/orders", response=list[OrderOut])
def order_list(request, limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0)):
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
    return Status(201 if created else 200, message)


@router.get("/messages", response=list[MessageOut])
def message_list(request, limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0)):
    membership = request_workspace(request)
    messages = Message.objects.filter(workspace_id=membership.workspace_id)
    return messages.select_related("connection")[offset : offset + limit]
