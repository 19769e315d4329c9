"""Every owner page in Chromium, on a laptop (1366 by 900) and on a phone (390 by 844): nothing is
wider than the screen, no request fails, no console error (a live push with no target, a
missing favicon), and a screenshot of each is saved under artifacts/screenshots/pages/ for a
person to look at."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from approvals.models import Proposal
from catalog.models import Message, Product, StoreConnection, Variant
from memory.services import Source, memory_write
from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_shell import _log_in
from tests.helpers import pending_proposal

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What sticks out of the screen, named for the failure message.
WIDEST = """() => [...document.querySelectorAll('body *')]
  .filter(el => el.getBoundingClientRect().right > document.documentElement.clientWidth)
  .map(el => el.tagName + '.' + el.className + ' ' + (el.textContent || '').trim().slice(0, 30))
  .slice(-3)"""
SIZES = {"laptop": (1366, 900), "phone": (390, 844)}
PAGES = [
    "board/",
    "board/?tab=committed",
    "runs/",
    "agents/",
    "costs/",
    "memory/",
    "catalog/",
    "catalog/inventory/",
    "catalog/messages/",
    "catalog/store/",
    "content/",
    "content/calendar/",
    "metrics/",
    "models/",
    "evals/",
    "audit/",
    "settings/",
    "settings/policy/",
]


@pytest.fixture
def shop(workspace, make_agent):
    """A shop with a product, a customer's message and a card of each everyday kind."""
    store = StoreConnection.objects.create(
        workspace=workspace,
        shop_domain="alice.myshopify.com",
        access_token_encrypted="x",
        currency="EUR",
        languages=["en", "es"],
    )
    product = Product.objects.create(
        workspace=workspace, connection=store, external_id=7, title="Linen shirt"
    )
    Variant.objects.create(product=product, external_id=70, title="Blue", price="49.00")
    message = Message.objects.create(
        workspace=workspace,
        connection=store,
        customer_email="nina@example.com",
        customer_name="Nina",
        subject="Where is my parcel?",
        body="Hello, my order #1016 has not arrived yet. Can you check?",
        order_ref="#1016",
    )
    agent = make_agent("demo.propose", slug="proposer")
    _card(
        agent,
        "catalog.send_reply",
        f"message:{message.pk}",
        {"message_id": message.pk, "body": "Hello Nina, it left today.", "tier": "local"},
        rationale="The customer wrote in English, about track order.",
    )
    _card(
        agent,
        "catalog.change_price",
        "variant:70",
        {"variant_id": 70, "price": "52.00"},
        facts={"currency": "EUR", "old_price": 49.0},
    )
    _card(
        agent,
        "catalog.update_description",
        "product:7",
        {"product_id": 7, "descriptions": {"en": "<p>Linen.</p>", "es": "<p>Lino.</p>"}},
    )
    memory_write(
        workspace=workspace,
        namespace="policies",
        key="returns",
        kind="fact",
        content="Returns within 30 days of delivery.",
        metadata={"return_days": 30},
        source=Source("user", ref="test"),
    )
    return store


def _card(agent, effector: str, target: str, payload: dict, **fields):
    """A waiting card as a run would leave it: its preview worked out by its effector."""
    from approvals.effectors import get_effector
    from approvals.services import payload_hash

    preview = get_effector(effector).preview(payload, workspace=agent.workspace)
    return pending_proposal(
        agent,
        effector=effector,
        target=target,
        payload=payload,
        diff=json.loads(json.dumps(preview, default=str)),
        **fields,
    ) and Proposal.objects.filter(target=target).update(payload_hash=payload_hash(payload))


@pytest.mark.parametrize("size", SIZES)
def test_every_page_fits_the_screen_and_loads_without_errors(
    browser, web_server, owner, shop, size
):
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} {r.url}"))
    folder = SCREENSHOTS / "pages"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        _log_in(page, web_server, "alice@shop.example")
        too_wide = {}
        for path in PAGES:
            page.goto(f"{web_server}/w/alice/{path}")
            page.wait_for_load_state("networkidle")
            name = path.strip("/").replace("/", "-").replace("?tab=", "-") or "home"
            page.screenshot(path=folder / f"{name}-{size}.png", full_page=True)
            scroll = page.evaluate("document.documentElement.scrollWidth")
            if scroll > width:
                too_wide[path] = (scroll, page.evaluate(WIDEST))
    finally:
        context.close()

    assert not too_wide, f"wider than the {width}px screen: {too_wide}"
    assert not problems, problems


def test_the_board_speaks_the_owner_s_language_on_a_phone(browser, web_server, owner, shop):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        _log_in(page, web_server, "alice@shop.example")
        board = page.locator("#cards-pending")
        reply = board.locator("article.card", has_text="Reply to Nina about order #1016")
        price = board.locator("article.card", has_text="Change the price of")

        # The reply is judged beside the customer's own words.
        assert reply.count() == 1
        assert "my order #1016 has not arrived yet" in reply.inner_text()
        assert "Change the price of Linen shirt · Blue from €49.00 to €52.00" in price.inner_text()
        text = board.inner_text()  # what shows: the details for operators stay folded
        for code in ("catalog.send_reply", "message_id", "variant:70", "0.0000", "{"):
            assert code not in text, code

        # Editing is through fields, never JSON: a textarea for the reply, a money input for
        # the price, a rich-text editor per language for the description.
        reply.get_by_text("Edit", exact=True).click()
        assert reply.locator("textarea[name='edit:body']").is_visible()
        assert reply.locator("[name^='json:'], textarea.json").count() == 0
        price.get_by_text("Edit", exact=True).click()
        money = price.get_by_label("Price", exact=True)
        assert money.get_attribute("inputmode") == "decimal"
        description = board.locator("article.card", has_text="New description for Linen shirt")
        description.get_by_text("Edit", exact=True).click()
        assert description.locator("trix-editor").count() == 2

        # Approve the edited reply on the phone: it leaves the waiting list at once.
        reply.locator("textarea[name='edit:body']").fill("Hello Nina, it left today: DHL 123.")
        reply.get_by_role("button", name="Approve as edited").click()
        page.wait_for_function(
            "() => !document.querySelector('#cards-pending article.card.status-pending"
            ' textarea[name="edit:body"]\')'
        )
    finally:
        context.close()

    approved = Proposal.objects.get(effector="catalog.send_reply")
    assert approved.status in ("approved", "committed", "failed")
    assert approved.payload["body"] == "Hello Nina, it left today: DHL 123."
    assert approved.payload["message_id"] == approved.proposed_payload["message_id"]


def test_on_a_laptop_a_card_s_full_context_opens_beside_the_list(browser, web_server, owner, shop):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    try:
        _log_in(page, web_server, "alice@shop.example")
        reply = page.locator("article.card", has_text="Reply to Nina about order #1016")
        reply.get_by_role("link", name="The customer, the product and the run in full").click()

        pane = page.locator("#detail")
        expect(pane).to_contain_text("Earlier messages from Nina")
        expect(pane).to_contain_text("my order #1016 has not arrived yet")
        assert page.url.endswith("/w/alice/board/")  # beside the list, not instead of it
        assert pane.bounding_box()["x"] > reply.bounding_box()["x"] + 300
    finally:
        context.close()


def test_the_owner_edits_a_policy_s_number_as_a_field_and_invites_a_member(
    page, web_server, owner, shop
):
    from memory.models import MemoryItem

    _log_in(page, web_server, "alice@shop.example")
    item = MemoryItem.objects.get(key="returns")
    page.goto(f"{web_server}/w/alice/memory/items/{item.pk}/")
    page.get_by_label("Text").fill("Returns within 45 days of delivery.")
    page.get_by_label("Return days").fill("45")
    page.get_by_role("button", name="Save as v2").click()

    expect(page.locator("#history")).to_contain_text("Return days: 30 → 45")
    assert MemoryItem.objects.get(key="returns", version=2).metadata == {"return_days": 45}

    page.goto(f"{web_server}/w/alice/settings/")
    page.get_by_label("Invite by email").fill("nina@shop.example")
    page.get_by_label("As", exact=True).select_option("operator")
    page.get_by_role("button", name="Invite").click()
    expect(page.get_by_role("status")).to_contain_text("Send them this link to sign in")
    expect(page.locator("#members, table").first).to_contain_text("nina@shop.example")
