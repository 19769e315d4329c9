"""The demo shop in Chromium: the store simulator sends a product with a thin description,
the catalog writer's proposal arrives live on the board, the owner approves it, the shop
receives exactly one write, and the Catalog page shows the description as written."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from agents.services.models import intent_examples_add
from approvals.models import Proposal
from catalog.simulator import StoreSimulator
from tests.agents.conftest import wait_for_run
from tests.browser.test_shell import _log_in
from tests.catalog.conftest import NEW_SECRET, SHOP, store  # noqa: F401 - a fixture
from tests.catalog.test_pipelines import INTENT_EXAMPLES, PRODUCT
from tests.helpers import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def intents(workspace):
    """Examples before the store: connecting it then seeds nothing (embedding the full seed
    would keep both cores busy for the first half minute of the test)."""
    intent_examples_add(workspace=workspace, examples=INTENT_EXAMPLES, source="test")


@pytest.fixture
def shop(intents, store, web_server):  # noqa: F811 - the imported fixture
    sim = StoreSimulator(
        shop_domain=SHOP,
        webhook_secret=NEW_SECRET,
        access_token="shpat_x",
        target=web_server,
        products=[PRODUCT],
    )
    sim.start()
    store.api_base_url = sim.base_url
    store.save()
    yield sim
    sim.close()


def test_the_demo_shop_from_webhook_to_an_approved_description(
    page, web_server, worker, owner, shop
):
    _log_in(page, web_server, "alice@shop.example")
    page.goto(f"{web_server}/w/alice/board/")
    expect(page.locator("#live-status")).to_have_text("● live")

    assert shop.send_webhook("products/create", PRODUCT) == 200

    wait_until(lambda: Proposal.objects.filter(status="pending").exists(), timeout=60)
    proposal = Proposal.objects.get()
    card = page.locator(f"#proposal-{proposal.pk}")
    expect(card).to_contain_text("catalog.update_description", timeout=30_000)  # pushed live
    expect(card).to_contain_text("Description in English")
    expect(card).to_contain_text("Example T-Shirt")
    card.get_by_role("button", name="Approve").click()

    expect(card.locator(".badge.committed")).to_be_visible(timeout=30_000)
    wait_for_run(proposal.run_id, "succeeded")
    assert len(shop.writes) == 1
    assert "Example T-Shirt" in shop.writes[0]["body"]["product"]["body_html"]

    page.goto(f"{web_server}/w/alice/catalog/")
    row = page.locator("tr", has_text="Example T-Shirt")
    expect(row).to_contain_text("written")
