"""The demo shop for real: the store simulator sends signed webhooks and messages over HTTP to
a live server, a real Celery worker runs the agents with the local OpenAI-compatible server,
a person approves, and the simulator receives exactly one write per approved proposal."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Run
from agents.services.models import intent_examples_add
from aios_site.accounts.services import token_create
from approvals.models import Proposal
from approvals.services import proposal_approve
from catalog.models import Order, Product, Variant
from catalog.simulator import StoreSimulator
from tests.agents.processes import start_worker
from tests.catalog.conftest import NEW_SECRET, SHOP
from tests.catalog.test_pipelines import INTENT_EXAMPLES, PRODUCT
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.helpers import default_provider, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shop(store, owner, live_server):
    """The simulator playing SHOP against the live server, a model provider, intents."""
    model = FakeOpenAI()
    default_provider(store.workspace, model.base_url)
    intent_examples_add(workspace=store.workspace, examples=INTENT_EXAMPLES, source="test")
    membership = owner.memberships.get(workspace=store.workspace)
    _, api_token = token_create(membership=membership, name="simulator")
    sim = StoreSimulator(
        shop_domain=SHOP,
        webhook_secret=NEW_SECRET,
        access_token="shpat_x",
        target=live_server.url,
        api_token=api_token,
        products=[PRODUCT],
    )
    sim.start()
    store.api_base_url = sim.base_url
    store.outbound_url = f"{sim.base_url}/outbound/replies"
    store.save()
    worker = start_worker(concurrency=2)
    yield sim, model, membership
    worker.stop()
    sim.close()
    model.close()


def _pending(effector: str) -> Proposal:
    wait_until(
        lambda: Proposal.objects.filter(effector=effector, status="pending").exists(), timeout=60
    )
    return Proposal.objects.get(effector=effector, status="pending")


def _approve_and_wait(proposal: Proposal, membership) -> Proposal:
    proposal_approve(proposal=proposal, membership=membership, shown_hash=proposal.payload_hash)
    wait_until(lambda: Run.objects.get(pk=proposal.run_id).status == "succeeded", timeout=60)
    proposal.refresh_from_db()
    return proposal


def test_a_product_webhook_becomes_an_approved_description_written_once(shop):
    sim, model, membership = shop
    model.script(Reply("A soft T-shirt from Acme for every day.\n\nIt costs 19.99 USD."))
    model.script(Reply("Una camiseta suave de Acme para cada día.\n\nCuesta 19.99 USD."))

    assert sim.send_webhook("products/create", PRODUCT) == 200
    proposal = _pending("catalog.update_description")
    proposal = _approve_and_wait(proposal, membership)

    assert proposal.status == "committed"
    assert len(sim.writes) == 1
    assert sim.writes[0]["idempotency_key"] == proposal.idempotency_key
    assert "A soft T-shirt" in sim.writes[0]["body"]["product"]["body_html"]
    # The shop's own products/update (sent by the simulator after the write) changes nothing.
    wait_until(lambda: "A soft T-shirt" in Product.objects.get().body_html, timeout=30)
    runs = Run.objects.filter(agent__slug="catalog-writer")
    assert runs.count() == 1, [(r.trigger_ref, r.input, r.status) for r in runs]


def test_a_customer_message_becomes_one_signed_reply_after_approval(shop):
    sim, model, membership = shop
    model.script(Reply("We accept returns within 30 days. Kind regards, the shop."))

    status = sim.send_message(
        customer_email="ana@example.com",
        customer_name="Ana",
        subject="Return",
        body="I want to return the item and get a refund",
        external_id="hd-1",
    )
    assert status == 201
    proposal = _pending("catalog.send_reply")
    proposal = _approve_and_wait(proposal, membership)

    assert proposal.status == "committed"
    assert len(sim.replies) == 1
    assert sim.replies[0]["body"]["to"] == "ana@example.com"


def test_stock_falling_below_its_cover_raises_an_alert_and_a_note_by_itself(shop, store):
    sim, _, _ = shop
    product = Product.objects.create(
        workspace=store.workspace,
        connection=store,
        external_id=1,
        title="Mug",
        status="active",
        body_html="<p>" + "words " * 40 + "</p>",
    )
    variant = Variant.objects.create(
        product=product, external_id=2, title="Default Title", inventory_item_id=3
    )
    Order.objects.create(
        workspace=store.workspace,
        connection=store,
        external_id=4,
        placed_at=timezone.now() - timedelta(days=1),
        line_items=[{"variant_id": 2, "quantity": 30}],
    )
    sim.send_webhook("inventory_levels/update", {"inventory_item_id": 3, "available": 2})

    wait_until(
        lambda: Proposal.objects.filter(effector="core.note", status="committed").exists(),
        timeout=60,
    )
    assert variant.alerts.get().kind == "low_stock"
    assert sim.writes == []  # a note goes to memory, not to the shop
