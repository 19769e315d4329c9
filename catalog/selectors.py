"""Reads of the catalog, scoped to one workspace: products with the state of their
descriptions, stock with its pace of sales, alerts, and customer messages with their reply.

Each `*_rows` function takes a page of objects from its `*_list` and costs a fixed number of
queries whatever the page holds: what every row needs is fetched once for the whole page.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from agents.models import ACTIVE_STATUSES, Run, RunStatus
from approvals.models import Proposal, ProposalStatus
from approvals.selectors import TAB_STATUSES
from catalog import html
from catalog.models import Alert, AlertStatus, Message, Order, Product, Variant
from catalog.tools import SALES_WINDOW_DAYS, days_of_cover, description_is_thin

DESCRIBE, REPLY = "catalog.update_description", "catalog.send_reply"
EXCERPT_CHARS = 300

# A send_reply proposal's status, as the reply's: "sent" once committed. An expired one is
# as good as rejected (the board files it there too); a reply cannot be rolled back.
REPLY_STATUSES = {
    ProposalStatus.PENDING: "pending",
    ProposalStatus.APPROVED: "approved",
    ProposalStatus.COMMITTED: "sent",
    ProposalStatus.REJECTED: "rejected",
    ProposalStatus.EXPIRED: "rejected",
    ProposalStatus.FAILED: "failed",
    ProposalStatus.ROLLED_BACK: "sent",
}


def board_tab(status: str) -> str:
    """The board tab a proposal in this status is on, for links to its card."""
    return next((tab for tab, statuses in TAB_STATUSES.items() if status in statuses), "pending")


def variant_title(variant: Variant) -> str:
    """ "Shirt / Small", or "Shirt" for a product without options."""
    if variant.title in ("", "Default Title"):
        return variant.product.title
    return f"{variant.product.title} / {variant.title}"


# -- products ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductRow:
    product: Product
    # {language: missing | thin | ok | proposed | written}, in the store's language order.
    description_status: dict[str, str]
    pending: list[Proposal]  # pending proposals about `product:<id>`, any effector
    price_min: Decimal | None
    price_max: Decimal | None
    excerpt: str  # the description as text: never its HTML


def product_list(*, workspace_id: int) -> QuerySet[Product]:
    """The live products (not deleted in the shop), by title."""
    return (
        Product.objects.filter(workspace_id=workspace_id, deleted_at__isnull=True)
        .select_related("connection")
        .prefetch_related(Prefetch("variants", queryset=Variant.objects.order_by("position")))
    )


def product_rows(
    *, workspace_id: int, products: Iterable[Product] | None = None
) -> list[ProductRow]:
    """Rows for `products` (a page of `product_list`; all of it by default): three queries."""
    products = list(product_list(workspace_id=workspace_id) if products is None else products)
    pending = _pending_by_target(workspace_id, [f"product:{p.external_id}" for p in products])
    return [_product_row(p, pending.get(f"product:{p.external_id}", [])) for p in products]


def _pending_by_target(workspace_id: int, targets: list[str]) -> dict[str, list[Proposal]]:
    found: dict[str, list[Proposal]] = defaultdict(list)
    if not targets:
        return found
    proposals = Proposal.objects.filter(
        workspace_id=workspace_id, status=ProposalStatus.PENDING, target__in=targets
    ).only("pk", "workspace_id", "target", "effector", "payload", "risk", "created_at")
    for proposal in proposals.order_by("created_at", "pk"):
        found[proposal.target].append(proposal)
    return found


def _product_row(product: Product, pending: list[Proposal]) -> ProductRow:
    proposed = {
        language
        for proposal in pending
        if proposal.effector == DESCRIBE and isinstance(proposal.payload.get("descriptions"), dict)
        for language in proposal.payload["descriptions"]
    }
    prices = [v.price for v in product.variants.all() if v.price is not None]
    text = html.visible_text(product.body_html)
    return ProductRow(
        product=product,
        description_status=description_status(product, proposed=proposed),
        pending=pending,
        price_min=min(prices, default=None),
        price_max=max(prices, default=None),
        excerpt=" ".join(text.split())[:EXCERPT_CHARS],
    )


def description_status(product: Product, *, proposed: set[str]) -> dict[str, str]:
    """Per shop language: a draft waiting for approval, AIOS's text still in place, or the
    shop's own text judged (only the primary language has one here: `body_html`)."""
    languages = product.connection.languages or ["en"]
    status = {}
    for language in languages:
        if language in proposed:
            status[language] = "proposed"
        elif _written_by_aios(product, language, primary=languages[0]):
            status[language] = "written"
        elif language != languages[0] or not html.visible_text(product.body_html):
            status[language] = "missing"
        else:
            status[language] = "thin" if description_is_thin(product) else "ok"
    return status


def _written_by_aios(product: Product, language: str, *, primary: str) -> bool:
    written = html.visible_text((product.descriptions or {}).get(language) or "")
    if not written:
        return False
    # The shop's text may have been edited since AIOS wrote it: then it is the shop's again.
    return language != primary or written == html.visible_text(product.body_html)


# -- stock and alerts -------------------------------------------------------------------------


@dataclass(frozen=True)
class StockRow:
    variant: Variant
    daily_sales: float
    days_of_cover: float | None  # None: nothing sold lately (or stock not tracked)
    alert: Alert | None  # its open alert

    @property
    def title(self) -> str:
        return variant_title(self.variant)

    @property
    def quantity(self) -> int | None:
        return self.variant.inventory_quantity


def stock_rows(*, workspace_id: int, now: datetime | None = None) -> list[StockRow]:
    """Every variant of the live products, those with an open alert first, then the ones
    that run out soonest: three queries, the sales of the window summed in one pass."""
    variants = (
        Variant.objects.filter(product__workspace_id=workspace_id, product__deleted_at__isnull=True)
        .select_related("product__connection")
        .order_by("product__title", "product_id", "position", "pk")
    )
    since = (now or timezone.now()) - timedelta(days=SALES_WINDOW_DAYS)
    sold = _units_sold(workspace_id, since=since)
    alerts = {a.variant_id: a for a in alert_list(workspace_id=workspace_id, status="open")}
    rows = []
    for variant in variants:
        units = sold.get((variant.product.connection_id, variant.external_id), 0)
        per_day = units / SALES_WINDOW_DAYS
        cover = days_of_cover(variant.inventory_quantity, per_day)
        rows.append(StockRow(variant, per_day, cover, alerts.get(variant.pk)))
    return sorted(rows, key=_urgency)


def _urgency(row: StockRow) -> tuple[bool, bool, float]:
    # sorted() is stable: within a rank the rows keep their title order.
    return (row.alert is None, row.days_of_cover is None, row.days_of_cover or 0)


def _units_sold(workspace_id: int, *, since: datetime) -> dict[tuple[int, int], int]:
    """Units per (store, variant id) in orders placed since then, cancelled ones left out:
    what `catalog.tools.daily_sales` counts for one variant, for all of them at once."""
    orders = Order.objects.filter(
        workspace_id=workspace_id, placed_at__gte=since, cancelled_at__isnull=True
    ).values_list("connection_id", "line_items")
    sold: dict[tuple[int, int], int] = defaultdict(int)
    for connection_id, items in orders:
        for item in items or []:
            if isinstance(item, dict) and isinstance(item.get("variant_id"), int):
                sold[(connection_id, item["variant_id"])] += _quantity(item)
    return sold


def _quantity(item: dict) -> int:
    try:
        return int(item.get("quantity") or 0)
    except (TypeError, ValueError):
        return 0


def alert_list(*, workspace_id: int, status: str | None = None) -> QuerySet[Alert]:
    """Newest first; `status` is "open" or "resolved" (None: both)."""
    alerts = Alert.objects.filter(workspace_id=workspace_id).select_related("variant__product")
    if status:
        alerts = alerts.filter(status=AlertStatus(status))
    return alerts


# -- customer messages ------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageRow:
    message: Message
    # none | drafting | pending | approved | sent | rejected | failed
    reply_status: str
    proposal: Proposal | None  # the latest send_reply proposal for `message:<pk>`
    run_id: int | None  # the run that drafted the reply (or is drafting it)

    @property
    def reply(self) -> str:
        """The reply as proposed (and as edited before approval), or as sent."""
        return str(self.proposal.payload.get("body") or "") if self.proposal else ""

    @property
    def board_tab(self) -> str:
        return board_tab(self.proposal.status) if self.proposal else "pending"


def message_list(*, workspace_id: int) -> QuerySet[Message]:
    """Newest first."""
    return Message.objects.filter(workspace_id=workspace_id).select_related("connection")


def message_rows(
    *, workspace_id: int, messages: Iterable[Message] | None = None
) -> list[MessageRow]:
    """Rows for `messages` (a page of `message_list`; all of it by default): three queries."""
    messages = list(message_list(workspace_id=workspace_id) if messages is None else messages)
    ids = [m.pk for m in messages]
    proposals = _latest_replies(workspace_id, ids)
    runs = _latest_runs(workspace_id, ids)
    return [_message_row(m, proposals.get(m.pk), runs.get(m.pk)) for m in messages]


def _latest_replies(workspace_id: int, message_ids: list[int]) -> dict[int, Proposal]:
    if not message_ids:
        return {}
    proposals = Proposal.objects.filter(
        workspace_id=workspace_id,
        effector=REPLY,
        target__in=[f"message:{pk}" for pk in message_ids],
    ).only("pk", "workspace_id", "target", "status", "payload", "run_id", "error", "created_at")
    latest: dict[int, Proposal] = {}
    for proposal in proposals.order_by("-created_at", "-pk"):
        latest.setdefault(int(proposal.target.removeprefix("message:")), proposal)
    return latest


def _latest_runs(workspace_id: int, message_ids: list[int]) -> dict[int, Run]:
    if not message_ids:
        return {}
    runs = Run.objects.filter(workspace_id=workspace_id, input__message_id__in=message_ids)
    latest: dict[int, Run] = {}
    for run in runs.only("pk", "status", "input", "created_at").order_by("-created_at", "-pk"):
        latest.setdefault(run.input["message_id"], run)
    return latest


def _message_row(message: Message, proposal: Proposal | None, run: Run | None) -> MessageRow:
    # A run started after the latest proposal (a retry, a replay) is what the reply waits for.
    run_is_newer = run is not None and (
        proposal is None or (run.pk != proposal.run_id and run.created_at > proposal.created_at)
    )
    if run_is_newer and run.status in ACTIVE_STATUSES:
        return MessageRow(message, "drafting", proposal, run.pk)
    if run_is_newer and run.status == RunStatus.FAILED and proposal is None:
        return MessageRow(message, "failed", None, run.pk)  # the agent gave up: a person must
    if proposal is None:
        return MessageRow(message, "none", None, run.pk if run else None)
    status = REPLY_STATUSES.get(proposal.status, proposal.status)
    return MessageRow(message, status, proposal, proposal.run_id or (run.pk if run else None))


# -- names for the board's cards (see approvals.targets) -------------------------------------


def _numbers(references: list[str]) -> list[int]:
    return [int(reference) for reference in references if reference.isdigit()]


def product_names(workspace_id: int, references: list[str]) -> dict[str, str]:
    products = Product.objects.filter(
        workspace_id=workspace_id, external_id__in=_numbers(references)
    ).values_list("external_id", "title")
    return {str(external_id): title for external_id, title in products}


def variant_names(workspace_id: int, references: list[str]) -> dict[str, str]:
    variants = Variant.objects.filter(
        product__workspace_id=workspace_id, external_id__in=_numbers(references)
    ).values_list("external_id", "product__title", "title")
    return {
        str(external_id): product if title in ("", "Default Title") else f"{product} · {title}"
        for external_id, product, title in variants
    }


def message_names(workspace_id: int, references: list[str]) -> dict[str, str]:
    messages = Message.objects.filter(workspace_id=workspace_id, pk__in=_numbers(references))
    rows = messages.values_list("pk", "customer_name", "customer_email", "subject", "order_ref")
    return {
        str(pk): _about(name or email, subject, order) for pk, name, email, subject, order in rows
    }


def _about(customer: str, subject: str, order: str) -> str:
    """ "Nina about order #1016", "Nina about “Beeswax candle question”", or "Nina"."""
    if order:
        return f"{customer} about order {order if order.startswith('#') else '#' + order}"
    return f"{customer} about “{subject}”" if subject else customer


# -- what the board's detail pane shows beside a card ------------------------------------------

HISTORY = 5  # a customer's earlier messages shown beside a reply


def message_context(workspace_id: int, reference: str) -> list[dict]:
    """The customer's message in full, their order, and their earlier messages."""
    message = _by_reference(Message.objects.filter(workspace_id=workspace_id), "pk", reference)
    if message is None:
        return []
    who = message.customer_name or message.customer_email
    sections = [
        {
            "label": f"{who} wrote" + (f": “{message.subject}”" if message.subject else ""),
            "text": message.body,
            "when": message.received_at,
        }
    ]
    order = _order_of(message)
    if order is not None:
        sections.append({"label": f"Order {order.name}", "text": _order_words(order)})
    earlier = Message.objects.filter(
        workspace_id=workspace_id,
        customer_email=message.customer_email,
        received_at__lt=message.received_at,
    ).order_by("-received_at")[:HISTORY]
    items = [{"text": m.subject or m.body[:120], "when": m.received_at} for m in earlier]
    sections.append({"label": f"Earlier messages from {who}", "items": items, "empty": "None."})
    return sections


def _order_of(message: Message) -> Order | None:
    if not message.order_ref:
        return None
    name = message.order_ref if message.order_ref.startswith("#") else f"#{message.order_ref}"
    return Order.objects.filter(workspace_id=message.workspace_id, name=name).first()


def _order_words(order: Order) -> str:
    from aios_site.humanize import money

    status = order.fulfillment_status or "not shipped yet"
    if order.cancelled_at:
        status = "cancelled"
    return f"{money(order.total_price, order.currency)}, {status.replace('_', ' ')}"


def product_context(workspace_id: int, reference: str) -> list[dict]:
    """The product as the shop has it now: its status, its variants' prices, its page."""
    from django.urls import reverse

    from aios_site.accounts.models import Workspace
    from aios_site.humanize import money

    products = Product.objects.filter(workspace_id=workspace_id).select_related("connection")
    product = _by_reference(products, "external_id", reference)
    if product is None:
        return []
    slug = Workspace.objects.filter(pk=workspace_id).values_list("slug", flat=True).first()
    currency = product.connection.currency
    return [
        {
            "label": product.title,
            "text": f"{(product.status or 'active').capitalize()} in the shop",
            "url": f"{reverse('catalog', args=[slug])}#product-{product.pk}",
        },
        {
            "label": "Prices now",
            "items": [
                {"text": f"{v.title}: {money(v.price, currency)}"} for v in product.variants.all()
            ],
            "empty": "No variants.",
        },
    ]


def variant_context(workspace_id: int, reference: str) -> list[dict]:
    variant = _by_reference(
        Variant.objects.filter(product__workspace_id=workspace_id), "external_id", reference
    )
    return product_context(workspace_id, str(variant.product.external_id)) if variant else []


def _by_reference(rows, field: str, reference: str):
    """The row whose `field` is the number in `reference` ("message:12"'s "12"), or None."""
    return rows.filter(**{field: int(reference)}).first() if reference.isdigit() else None
