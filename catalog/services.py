"""Store connections, and processing the webhook events they send.

Processing upserts the catalog and mirrors each product into memory as a fact
(`products/product:<id>`). An event older than what is stored (by `X-Shopify-Triggered-At`,
else the payload's `updated_at`) changes nothing: deliveries arrive out of order. A deleted
product keeps its row as a tombstone, so no delivery for its id brings it back.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db import connection as database
from django.db.models import Q
from django.utils import timezone

from agents.pipelines import PermanentError
from aios_site import netguard
from aios_site.queues import send
from approvals.audit import Actor, audit_record, plain
from catalog.agents import (
    on_message,
    on_product_changed,
    on_stock_changed,
    on_webhook_topic,
    store_agents_ensure,
)
from catalog.html import visible_text
from catalog.models import (
    Customer,
    DataExport,
    EventStatus,
    Message,
    Order,
    Product,
    StoreConnection,
    Variant,
    WebhookEvent,
)
from catalog.redaction import customer_traces_erase
from catalog.webhooks import parse_time
from memory.services import Source, memory_forget, memory_write

log = logging.getLogger(__name__)

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
    currency: str = "USD",
    allow_private: bool | None = None,
) -> StoreConnection:
    """Connects a store. The URLs the server will call must be public addresses unless the
    settings allow others (`allow_private`: a URL the system made, the demo's simulator)."""
    shop_domain = shop_domain.strip().lower()
    connection = StoreConnection(
        workspace=workspace,
        shop_domain=shop_domain,
        api_base_url=api_base_url or f"https://{shop_domain}",
        outbound_url=outbound_url,
        languages=languages or ["en"],
        currency=currency.strip().upper(),
    )
    connection.access_token = access_token
    connection.webhook_secrets = webhook_secrets
    connection.full_clean(exclude=["workspace", "access_token_encrypted"])
    for name in ("api_base_url", "outbound_url"):
        if url := getattr(connection, name):
            netguard.validate_url(url, field_name=name, allow_private=allow_private)
    connection.save()
    store_agents_ensure(workspace=workspace, actor=actor)
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
    """Applies one stored event, once (see webhook_process_many)."""
    webhook_process_many(event_ids=[event_id])


def webhook_process_many(*, event_ids: list[int]) -> None:
    """Applies stored events in the order they arrived, in one transaction and each in a
    savepoint of its own. An event another worker holds is left to it (a redelivered batch
    skips what the first delivery is doing); a processed one is not touched again.

    The batch's lease is its transaction: the row locks keep every other worker off its
    events, and nothing of it is written unless it commits, so a holder that lost them can
    write nothing (the fence). A worker paused or hung between statements would hold them
    for ever; PostgreSQL ends a session idle in it for AIOS_WEBHOOK_BATCH_IDLE_SECONDS,
    which rolls the batch back and frees its events for the sweep to hand to another."""
    with transaction.atomic():
        _lease_the_transaction()
        events = list(
            WebhookEvent.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("connection__workspace")
            .filter(pk__in=event_ids, status=EventStatus.RECEIVED)
            .order_by("pk")
        )
        for event in events:
            _process(event)
        # The body is kept as it came; only the redaction handlers change it, themselves.
        WebhookEvent.objects.bulk_update(events, ["status", "error", "processed_at"])


def _lease_the_transaction() -> None:
    milliseconds = int(settings.AIOS_WEBHOOK_BATCH_IDLE_SECONDS * 1000)
    with database.cursor() as cursor:
        cursor.execute(f"SET LOCAL idle_in_transaction_session_timeout = {milliseconds}")


def _process(event: WebhookEvent) -> None:
    try:
        with transaction.atomic():
            event.status = _apply(event)
            started = event.status != EventStatus.FAILED and on_webhook_topic(
                event, event_ref=_event_ref(event)
            )
            if started and event.status == EventStatus.IGNORED:  # not ours, but an agent's
                event.status, event.error = EventStatus.PROCESSED, ""
    except (OperationalError, InterfaceError):
        raise  # the connection is gone: the batch is retried whole
    except Exception as error:  # one bad event must not hold back the rest of its batch
        log.exception("webhook event %s could not be processed", event.pk)
        event.status = EventStatus.FAILED
        event.error = f"could not be processed: {type(error).__name__}: {error}"[:2000]
    event.processed_at = timezone.now()


def webhook_sweep(*, older_than: float = 30.0, limit: int = 5000) -> int:
    """Queues stored events still waiting `older_than` seconds after they arrived: their
    batch was lost with a web process, or the broker was down when they were stored."""
    from catalog.tasks import webhook_process_batch

    cutoff = timezone.now() - timedelta(seconds=older_than)
    waiting = list(
        WebhookEvent.objects.filter(status=EventStatus.RECEIVED, received_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    for start in range(0, len(waiting), 100):
        send(webhook_process_batch, waiting[start : start + 100])
    return len(waiting)


def _apply(event: WebhookEvent) -> str:
    handler = HANDLERS.get(event.topic)
    if handler is None:
        event.error = f"AIOS does not act on {event.topic!r} (yet); the event is kept"
        return EventStatus.IGNORED
    try:
        with transaction.atomic():  # a payload it cannot read leaves nothing half-applied
            return handler(event)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        event.error = f"the payload could not be applied: {type(error).__name__}: {error}"
        return EventStatus.FAILED


def _changed_at(event: WebhookEvent) -> datetime | None:
    if event.triggered_at:
        return event.triggered_at
    return parse_time(event.body.get("updated_at"))


def _older(changed_at: datetime | None, stored_at: datetime | None) -> bool:
    """An event from before what is stored: applying it would bring old data back."""
    return bool(changed_at and stored_at and changed_at < stored_at)


def _event_ref(event: WebhookEvent) -> str:
    return f"{event.topic} {event.webhook_id}"


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
    if product and (product.deleted_at or _older(changed_at, product.source_updated_at)):
        # Shopify never reuses a deleted product's id: whatever comes for it after the delete
        # was sent before it, however it is dated. The row is the tombstone.
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
    # An undated delivery keeps the newest date applied, so an older one after it is stale.
    product.source_updated_at = changed_at or product.source_updated_at
    product.raw = data
    product.save()
    _variants_upsert(product, data.get("variants") or [])
    product_remember(product, source=_source(event))
    on_product_changed(product, event_ref=_event_ref(event))
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
                "price": decimal_or_none(data.get("price")),
                "compare_at_price": decimal_or_none(data.get("compare_at_price")),
                "inventory_item_id": data.get("inventory_item_id"),
                "inventory_quantity": data.get("inventory_quantity"),
                "inventory_policy": str(data.get("inventory_policy") or "deny")[:20],
                "position": data.get("position") or 1,
                # Shopify keeps a unit's cost on its inventory item, not in this payload: a
                # cost known from elsewhere (a CSV, the owner) is kept unless one is sent.
                **({"cost": decimal_or_none(data["cost"])} if "cost" in data else {}),
            },
        )
        seen.append(variant.pk)
    product.variants.exclude(pk__in=seen).delete()


def decimal_or_none(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


def _product_delete(event: WebhookEvent) -> str:
    connection = event.connection
    # A product never seen here still gets its row, deleted: the tombstone that makes an
    # update delivered late stale (see _product_upsert).
    product, _ = Product.objects.select_for_update().get_or_create(
        connection=connection,
        external_id=event.body["id"],
        defaults={"workspace": connection.workspace, "title": "", "deleted_at": timezone.now()},
    )
    if product.deleted_at is None:
        product.deleted_at = timezone.now()
        product.save(update_fields=["deleted_at"])
    memory_forget(
        workspace=connection.workspace,
        namespace=PRODUCT_NAMESPACE,
        key=f"product:{product.external_id}",
        actor=_source(event).actor,
    )
    return EventStatus.PROCESSED


def product_remember(product: Product, *, source: Source, embed_later: bool = True) -> None:
    """The product as a fact in memory (`products/product:<id>`), a new version if it changed."""
    memory_write(
        workspace=product.workspace,
        namespace=PRODUCT_NAMESPACE,
        key=f"product:{product.external_id}",
        kind="fact",
        content=product_fact(product),
        metadata={"product_id": product.external_id, "handle": product.handle},
        source=source,
        embed_later=embed_later,
    )


def product_fact(product: Product) -> str:
    """What memory knows of a product: its words and prices, not its stock (which changes
    all day and is read from the catalog when it matters)."""
    return facts_text(
        title=product.title,
        product_type=product.product_type,
        vendor=product.vendor,
        body_html=product.body_html,
        prices=[(v.title, v.price) for v in product.variants.all() if v.price is not None],
        tags=product.tags,
        options=[o for o in (product.raw or {}).get("options") or [] if o.get("name") != "Title"],
    )


def facts_text(*, title, product_type, vendor, body_html, prices, tags, options=None) -> str:
    """A product's fact as memory holds it, from its fields (a product in the shop, or one of
    an eval's). Its options are counted ("Colour: 2 (Sand, Slate)"), as the description
    template counts them ("Available in 2 colours"): a count the shop's data gives is a fact."""
    text = visible_text(body_html or "")  # linear on any markup the shop sends
    description = " ".join(text.split())
    lines = [f"{title} ({product_type or 'product'} by {vendor or 'us'})."]
    if description:
        lines.append(description)
    if prices:
        lines.append("Variants and prices: " + "; ".join(f"{n}: {p}" for n, p in prices) + ".")
    if tags:
        lines.append(f"Tags: {tags}.")
    counted = [
        f"{option.get('name')}: {len(values)} ({', '.join(values)})"
        for option in options or []
        if (values := [str(v) for v in option.get("values") or [] if str(v).strip()])
        and values != ["Default Title"]
    ]
    if counted:
        lines.append("Options: " + "; ".join(counted) + ".")
    return "\n".join(lines)


# -- inventory, customers, orders --------------------------------------------------------


def _inventory_update(event: WebhookEvent) -> str:
    data, changed_at = event.body, _changed_at(event)
    variant = (
        Variant.objects.select_for_update(of=("self",))
        .select_related("product")
        .filter(product__connection=event.connection, inventory_item_id=data["inventory_item_id"])
        .first()
    )
    if variant is None:
        event.error = f"no variant holds inventory item {data['inventory_item_id']}"
        return EventStatus.IGNORED
    if _older(changed_at, variant.inventory_updated_at):
        return EventStatus.STALE
    variant.inventory_quantity = data.get("available")
    variant.inventory_updated_at = changed_at or timezone.now()
    variant.save(update_fields=["inventory_quantity", "inventory_updated_at"])
    on_stock_changed(variant, event_ref=_event_ref(event))
    return EventStatus.PROCESSED


def _customer_upsert(event: WebhookEvent) -> str:
    _, stale = _customer_from(event.connection, event.body, _changed_at(event))
    return EventStatus.STALE if stale else EventStatus.PROCESSED


def _customer_from(connection, data: dict, changed_at) -> tuple[Customer | None, bool]:
    if not data or not data.get("id"):
        return None, False
    customer = (
        Customer.objects.select_for_update()
        .filter(connection=connection, external_id=data["id"])
        .first()
    )
    if customer and customer.redacted_at:
        return customer, False  # redacted stays redacted
    if customer and _older(changed_at, customer.source_updated_at):
        return customer, True
    customer = customer or Customer(
        workspace=connection.workspace, connection=connection, external_id=data["id"]
    )
    customer.email = str(data.get("email") or "")[:255]
    customer.first_name = str(data.get("first_name") or "")[:255]
    customer.last_name = str(data.get("last_name") or "")[:255]
    customer.phone = str(data.get("phone") or "")[:50]
    customer.locale = str(data.get("locale") or "")[:20]
    customer.source_updated_at = changed_at or customer.source_updated_at
    customer.save()
    return customer, False


LINE_ITEM_FIELDS = (
    "product_id",
    "variant_id",
    "title",
    "variant_title",
    "sku",
    "quantity",
    "price",
)


def _order_upsert(event: WebhookEvent) -> str:
    data, connection, changed_at = event.body, event.connection, _changed_at(event)
    order = (
        Order.objects.select_for_update()
        .filter(connection=connection, external_id=data["id"])
        .first()
    )
    if order and _older(changed_at, order.source_updated_at):
        return EventStatus.STALE
    if order and order.redacted_at:
        return EventStatus.PROCESSED
    customer, _ = _customer_from(connection, data.get("customer") or {}, None)
    order = order or Order(
        workspace=connection.workspace, connection=connection, external_id=data["id"]
    )
    order.name = str(data.get("name") or "")[:50]
    order.email = str(data.get("email") or data.get("contact_email") or "")[:255]
    order.customer = customer
    order.financial_status = str(data.get("financial_status") or "")[:30]
    order.fulfillment_status = str(data.get("fulfillment_status") or "")[:30]
    order.cancelled_at = parse_time(data.get("cancelled_at"))
    order.total_price = decimal_or_none(data.get("current_total_price") or data.get("total_price"))
    order.currency = str(data.get("currency") or "")[:3]
    order.line_items = [
        {key: item.get(key) for key in LINE_ITEM_FIELDS} for item in data.get("line_items") or []
    ]
    order.placed_at = parse_time(data.get("created_at"))
    order.source_updated_at = changed_at or order.source_updated_at
    order.save()
    return EventStatus.PROCESSED


# -- compliance: what Shopify requires of every app ---------------------------------------


def _customers_data_request(event: WebhookEvent) -> str:
    """Gathers what AIOS holds about the customer for the shop owner to send on."""
    connection, data = event.connection, event.body
    customer_id = (data.get("customer") or {}).get("id")
    customer = Customer.objects.filter(connection=connection, external_id=customer_id).first()
    orders = Order.objects.filter(connection=connection, customer=customer) if customer else []
    export = {
        "customer": _customer_export(customer),
        "orders": [
            {
                "name": o.name,
                "placed_at": o.placed_at,
                "total_price": o.total_price,
                "currency": o.currency,
                "line_items": o.line_items,
                "email": o.email,
            }
            for o in orders
        ],
    }
    DataExport.objects.create(
        workspace=connection.workspace,
        connection=connection,
        customer_external_id=customer_id or 0,
        data=plain(export),
    )
    return EventStatus.PROCESSED


def _customer_export(customer: Customer | None) -> dict | None:
    if customer is None:
        return None
    fields = ("email", "first_name", "last_name", "phone", "locale")
    return {name: getattr(customer, name) for name in fields}


def _customers_redact(event: WebhookEvent) -> str:
    """Erases the customer's personal data: their row, the listed orders, their messages and
    exports, what runs and proposals made of them (catalog.redaction), and the stored webhook
    bodies that carried them."""
    connection, data = event.connection, event.body
    customer_id = (data.get("customer") or {}).get("id")
    order_ids = [int(i) for i in data.get("orders_to_redact") or []]
    now = timezone.now()
    customer = Customer.objects.filter(connection=connection, external_id=customer_id)
    orders = Order.objects.filter(connection=connection).filter(
        Q(external_id__in=order_ids) | Q(customer__external_id=customer_id)
    )
    emails = {
        str((data.get("customer") or {}).get("email") or ""),
        *customer.values_list("email", flat=True),
        *orders.values_list("email", flat=True),
    }
    customer_traces_erase(connection=connection, emails=emails)
    DataExport.objects.filter(connection=connection, customer_external_id=customer_id).delete()
    customer.update(email="", first_name="", last_name="", phone="", locale="", redacted_at=now)
    redacted_orders = list(orders.values_list("external_id", flat=True))
    orders.update(email="", redacted_at=now)
    _redact_event_bodies(connection, customer_id, redacted_orders)
    event.body = {"redacted": True, "customer": {"id": customer_id}, "orders_to_redact": order_ids}
    event.save(update_fields=["body"])
    return EventStatus.PROCESSED


def _redact_event_bodies(connection, customer_id, order_ids: list[int]) -> None:
    stored = WebhookEvent.objects.filter(connection=connection).filter(
        Q(topic__startswith="customers/", body__id=customer_id)
        | Q(topic__startswith="customers/", body__customer__id=customer_id)
        | Q(topic__startswith="orders/", body__id__in=order_ids)
        | Q(topic__startswith="orders/", body__customer__id=customer_id)
    )
    stored.update(body={"redacted": True})


def _shop_redact(event: WebhookEvent) -> str:
    """Erases everything AIOS holds for the shop: customers (and what runs made of their
    messages), orders, products (and their memory), and the stored webhook bodies."""
    connection = event.connection
    emails = {
        *Customer.objects.filter(connection=connection).values_list("email", flat=True),
        *Order.objects.filter(connection=connection).values_list("email", flat=True),
        *Message.objects.filter(connection=connection).values_list("customer_email", flat=True),
    }
    customer_traces_erase(connection=connection, emails=emails)
    Customer.objects.filter(connection=connection).delete()
    Order.objects.filter(connection=connection).delete()
    DataExport.objects.filter(connection=connection).delete()
    actor = _source(event).actor
    for product in Product.objects.filter(connection=connection):
        memory_forget(
            workspace=connection.workspace,
            namespace=PRODUCT_NAMESPACE,
            key=f"product:{product.external_id}",
            actor=actor,
        )
    Product.objects.filter(connection=connection).delete()
    WebhookEvent.objects.filter(connection=connection).update(body={"redacted": True})
    return EventStatus.PROCESSED


def _app_uninstalled(event: WebhookEvent) -> str:
    """The shop removed the app: nothing more goes to it (its redaction request follows)."""
    StoreConnection.objects.filter(pk=event.connection_id).update(uninstalled_at=timezone.now())
    return EventStatus.PROCESSED


HANDLERS = {
    "products/create": _product_upsert,
    "products/update": _product_upsert,
    "products/delete": _product_delete,
    "inventory_levels/update": _inventory_update,
    "customers/create": _customer_upsert,
    "customers/update": _customer_upsert,
    "orders/create": _order_upsert,
    "orders/updated": _order_upsert,
    "orders/cancelled": _order_upsert,
    "customers/data_request": _customers_data_request,
    "customers/redact": _customers_redact,
    "shop/redact": _shop_redact,
    "app/uninstalled": _app_uninstalled,
}


# -- customer messages ----------------------------------------------------------------------


def message_receive(
    *, workspace, store: str, external_id: str = "", **fields
) -> tuple[Message, bool]:
    """Stores a customer's message; a repeated external id returns the first (False)."""
    connection = StoreConnection.objects.filter(
        workspace=workspace, shop_domain=store.strip().lower()
    ).first()
    if connection is None:
        raise PermanentError(f"no store {store!r} is connected to this workspace")
    if external_id:
        existing = Message.objects.filter(connection=connection, external_id=external_id).first()
        if existing:
            return existing, False
    try:
        with transaction.atomic():
            message = Message.objects.create(
                workspace=workspace, connection=connection, external_id=external_id, **fields
            )
            on_message(message)
    except IntegrityError:  # the same message, delivered twice at once
        return Message.objects.get(connection=connection, external_id=external_id), False
    return message, True


# -- the demo shop ---------------------------------------------------------------------------

DEMO_SHOP = "demo-shop.myshopify.com"
DEMO_ACCESS_TOKEN = "shpat_simulator"  # noqa: S105 - the simulator's, not a real shop's
SIMULATOR_TOKEN_NAME = "store simulator"  # noqa: S105 - a label, not a secret


def _demo_publishing_ensure(workspace, url: str, connection: StoreConnection) -> None:
    """The demo shop's blog takes the content writer's posts (the `publish` endpoint),
    signed with the shop's webhook secret."""
    from approvals.audit import SETUP
    from approvals.models import WebhookEndpoint
    from approvals.services import webhook_endpoint_save
    from catalog.content.services import PUBLISH_ENDPOINT

    endpoint = WebhookEndpoint.objects.filter(workspace=workspace, name=PUBLISH_ENDPOINT).first()
    if endpoint is None or endpoint.url != url:
        webhook_endpoint_save(
            workspace=workspace,
            name=PUBLISH_ENDPOINT,
            url=url,
            secret=connection.webhook_secrets[0],
            actor=SETUP,
            allow_private=True,  # the demo's own simulator, on this machine
        )


def demo_store_ensure(*, workspace, simulator_url: str) -> dict[str, str]:
    """The demo workspace's shop, served by the store simulator at `simulator_url` (its port
    may change between starts), and what the simulator needs to play it: the webhook secret
    and a fresh API token for customer messages (the previous one is revoked)."""
    from aios_site.accounts.models import Membership, Role
    from aios_site.accounts.services import token_create, token_revoke
    from approvals.audit import SETUP

    simulator_url = simulator_url.rstrip("/")
    connection = StoreConnection.objects.filter(shop_domain=DEMO_SHOP).first()
    if connection is None:
        connection = store_connect(
            workspace=workspace,
            shop_domain=DEMO_SHOP,
            access_token=DEMO_ACCESS_TOKEN,
            webhook_secrets=[secrets.token_urlsafe(24)],
            actor=SETUP,
            api_base_url=simulator_url,
            outbound_url=f"{simulator_url}/outbound/replies",
            languages=["en", "es"],
            currency="EUR",
            allow_private=True,  # the demo's own simulator, on this machine
        )
    elif connection.api_base_url != simulator_url:
        connection.api_base_url = simulator_url
        connection.outbound_url = f"{simulator_url}/outbound/replies"
        connection.save(update_fields=["api_base_url", "outbound_url"])
    _demo_publishing_ensure(workspace, f"{simulator_url}/outbound/posts", connection)
    owner = Membership.objects.filter(workspace=workspace, role=Role.OWNER).first()
    for old in owner.tokens.filter(name=SIMULATOR_TOKEN_NAME, revoked_at__isnull=True):
        token_revoke(token=old)
    _, raw = token_create(membership=owner, name=SIMULATOR_TOKEN_NAME)
    return {
        "shop": DEMO_SHOP,
        "secret": connection.webhook_secrets[0],
        "access_token": connection.access_token,
        "api_token": raw,
    }
