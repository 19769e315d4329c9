"""The shop's digital workforce: the agents a store connection brings, and what starts them.

Connecting a store creates three agents (each can be changed or disabled on the Agents page)
and writes the default approval policy into the workspace, where it can be edited. Events
start runs: a product arriving with a thin description, stock falling below its days of
cover, a customer's message. Each start carries an idempotency key derived from the event,
so a redelivered webhook or a retried task starts nothing twice; a disabled agent starts
nothing at all.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from agents.models import ACTIVE_STATUSES, Agent, Run, Trigger
from aios_site.queues import send_later
from approvals.audit import Actor
from approvals.models import PolicyRule, Proposal, ProposalStatus
from approvals.policy import DEFAULT_RULES
from catalog import html
from catalog.models import Alert, AlertStatus, Message, Product, Variant
from catalog.tools import alerts_resolve, daily_sales, days_of_cover, description_is_thin

WRITER, WATCHER, SUPPORT = "catalog-writer", "inventory-watcher", "support"
DEFAULT_AGENTS = [
    {
        "slug": WRITER,
        "name": "Catalog writer (product descriptions)",
        "pipeline": "catalog.describe_product",
        "allowed_effectors": ["catalog.update_description"],
    },
    {
        "slug": WATCHER,
        "name": "Inventory watcher (days of cover, restock)",
        "pipeline": "catalog.inventory_alert",
        "allowed_effectors": ["core.note", "catalog.set_product_status"],
        "priority": "bulk",
    },
    {
        "slug": SUPPORT,
        "name": "Support (replies in the customer's language)",
        "pipeline": "catalog.reply_to_customer",
        "allowed_effectors": ["catalog.send_reply"],
        "priority": "interactive",
    },
]


def store_agents_ensure(*, workspace, actor: Actor) -> None:
    """The store's agents and the default policy, where the workspace has none yet."""
    from agents.services import agent_create
    from agents.tasks import intent_examples_seed
    from approvals.services import rules_set

    for spec in DEFAULT_AGENTS:
        if not Agent.objects.filter(workspace=workspace, slug=spec["slug"]).exists():
            agent_create(workspace=workspace, actor=actor, **spec)
    if not PolicyRule.objects.filter(workspace=workspace).exists():
        rules_set(workspace=workspace, rules=DEFAULT_RULES, actor=actor)
    # The support agent classifies with the workspace's intent examples; a worker embeds them.
    send_later(intent_examples_seed, workspace.pk)


def _agent(workspace_id: int, slug: str) -> Agent | None:
    return Agent.objects.filter(workspace_id=workspace_id, slug=slug, enabled=True).first()


def _start(agent: Agent, *, input: dict, key: str, ref: str) -> Run:
    from agents.services import run_start

    run, _ = run_start(
        agent=agent,
        input=input,
        trigger=Trigger.WEBHOOK,
        trigger_ref=ref[:200],
        idempotency_key=key,
    )
    return run


def _busy(agent: Agent, target: str, **input_match) -> bool:
    """A run already on it, or a proposal about it still waiting for a person."""
    pending = Proposal.objects.filter(
        workspace_id=agent.workspace_id,
        agent=agent,
        target=target,
        status__in=[ProposalStatus.PENDING, ProposalStatus.APPROVED],
    )
    return pending.exists() or _active_run(agent, **input_match) is not None


def _active_run(agent: Agent, **input_match) -> Run | None:
    """A queued, running or waiting run of the agent whose input has these values."""
    matching = {f"input__{name}": value for name, value in input_match.items()}
    return Run.objects.filter(agent=agent, status__in=ACTIVE_STATUSES, **matching).first()


def on_product_changed(product: Product, *, event_ref: str) -> Run | None:
    """A product with a thin description gets one drafted (unless one is on its way)."""
    agent = _agent(product.workspace_id, WRITER)
    if agent is None or not description_is_thin(product) or product.deleted_at:
        return None
    if _description_is_ours(product):
        return None
    if _busy(agent, f"product:{product.external_id}", product_id=product.external_id):
        return None
    return _start(
        agent,
        input={"product_id": product.external_id},
        key=f"describe:{product.connection_id}:{product.external_id}:{event_ref}",
        ref=event_ref,
    )


def _description_is_ours(product: Product) -> bool:
    """The description is the one the writer drafted and a person approved, come back as the
    shop's own products/update after the write. Short or not, drafting it again would loop."""
    ours = (product.descriptions or {}).get(product.connection.primary_language)
    return bool(ours) and html.visible_text(ours) == html.visible_text(product.body_html)


def on_stock_changed(variant: Variant, *, event_ref: str) -> Run | None:
    """Stock back above the threshold resolves the open alert; below it (or sold out),
    without an open alert, the inventory watcher looks at it."""
    threshold = settings.AIOS_STOCK_COVER_DAYS
    if not _is_low(variant, threshold):
        alerts_resolve(variant)
        return None
    agent = _agent(variant.product.workspace_id, WATCHER)
    if agent is None:
        return None
    if Alert.objects.filter(variant=variant, status=AlertStatus.OPEN).exists():
        return None
    if _busy(agent, f"variant:{variant.external_id}", variant_id=variant.external_id):
        return None
    return _start(
        agent,
        input={"variant_id": variant.external_id, "threshold_days": threshold},
        key=f"stock:{variant.product.connection_id}:{variant.external_id}:{event_ref}",
        ref=event_ref,
    )


def _is_low(variant: Variant, threshold: float) -> bool:
    quantity = variant.inventory_quantity
    if quantity is None:
        return False  # stock not tracked
    if quantity <= 0:
        return True
    cover = days_of_cover(quantity, daily_sales(variant))
    return cover is not None and cover < threshold


def on_message(message: Message) -> Run | None:
    agent = _agent(message.workspace_id, SUPPORT)
    if agent is None:
        return None
    return _start(
        agent,
        input={"message_id": message.pk},
        key=f"reply:{message.pk}",
        ref=f"message {message.pk}",
    )


def on_webhook_topic(event, *, event_ref: str) -> list[Run]:
    """Agents the owner set to start on this topic, each with a run that points at the event
    (the payload stays in the event, where redaction reaches it)."""
    agents = Agent.objects.filter(
        workspace_id=event.workspace_id, enabled=True, webhook_topics__contains=[event.topic]
    )
    return [
        _start(
            agent,
            input={"topic": event.topic, "webhook_event_id": event.pk},
            key=f"topic:{agent.pk}:{event.connection_id}:{event.webhook_id}",
            ref=event_ref,
        )
        for agent in agents
    ]


def stock_sweep() -> int:
    """Every tracked variant of the shops whose inventory watcher is on, once an hour (the
    key holds the hour: a second sweep in it starts nothing new)."""
    hour = timezone.now().strftime("%Y%m%d%H")
    started = 0
    watched = Agent.objects.filter(slug=WATCHER, enabled=True).values_list(
        "workspace_id", flat=True
    )
    variants = Variant.objects.filter(
        product__workspace_id__in=list(watched),
        product__deleted_at__isnull=True,
        inventory_quantity__isnull=False,
    ).select_related("product")
    for variant in variants:
        if on_stock_changed(variant, event_ref=f"sweep-{hour}") is not None:
            started += 1
    return started


def describe_on_demand(*, product: Product, user) -> tuple[Run, bool]:
    """The writer on one product now, whatever its description: a new run, or the one
    already on it (False), since a second click must not pay for a second draft."""
    from agents.pipelines import PermanentError
    from agents.services import run_start

    agent = Agent.objects.filter(workspace_id=product.workspace_id, slug=WRITER).first()
    if agent is None:
        raise PermanentError("this workspace has no catalog writer (connecting a store adds it)")
    if not agent.enabled:
        raise PermanentError("the catalog writer is disabled: turn it on on the Agents page")
    active = _active_run(agent, product_id=product.external_id)
    if active is not None:
        return active, False
    run, _ = run_start(
        agent=agent,
        input={"product_id": product.external_id},
        trigger=Trigger.MANUAL,
        trigger_ref=f"describe product {product.external_id} ({user.get_username()})",
    )
    return run, True
