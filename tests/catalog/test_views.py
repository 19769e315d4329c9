"""The Catalog pages: products with their descriptions' state, inventory, messages with
their replies, the store form and its test webhook; escaping, roles, tenancy, query counts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from agents.models import Agent, Run
from catalog.models import Alert, Message, Order, Product, StoreConnection, Variant, WebhookEvent
from tests.catalog.conftest import SHOP
from tests.helpers import pending_proposal

pytestmark = pytest.mark.django_db

FULL = "<p>" + "A soft shirt of heavy cotton that keeps its shape wash after wash. " * 3 + "</p>"
SCRIPT = "<script>alert(1)</script>"


# -- data, made directly: these tests are about what the pages show -------------------------


def product(store, external_id: int, title: str = "Shirt", body_html: str = FULL, **fields):
    made = Product.objects.create(
        workspace_id=store.workspace_id,
        connection=store,
        external_id=external_id,
        title=title,
        body_html=body_html,
        status="active",
        **fields,
    )
    Variant.objects.create(
        product=made, external_id=external_id * 10, title="Small", price=Decimal("19.99")
    )
    Variant.objects.create(
        product=made, external_id=external_id * 10 + 1, title="Large", price=Decimal("24.00")
    )
    return made


def proposal(store, agent_slug: str, effector: str, target: str, payload: dict, **fields):
    agent = Agent.objects.get(workspace_id=store.workspace_id, slug=agent_slug)
    return pending_proposal(agent, target=target, payload=payload, effector=effector, **fields)


def describe_proposal(store, made: Product, languages: list[str], **fields):
    descriptions = {language: "<p>draft</p>" for language in languages}
    payload = {"product_id": made.external_id, "descriptions": descriptions, "checks": []}
    return proposal(
        store,
        "catalog-writer",
        "catalog.update_description",
        f"product:{made.external_id}",
        payload,
        **fields,
    )


def message(store, body: str = "Where is my order?", **fields):
    fields = {"customer_email": "carla@example.com", "customer_name": "Carla", **fields}
    return Message.objects.create(
        workspace_id=store.workspace_id, connection=store, body=body, **fields
    )


def reply_proposal(store, made: Message, body: str, **fields):
    payload = {"message_id": made.pk, "body": body, "language": "en", "intent": "track_order"}
    return proposal(store, "support", "catalog.send_reply", f"message:{made.pk}", payload, **fields)


def run_of(store, agent_slug: str, input: dict, status: str = "running") -> Run:
    agent = Agent.objects.get(workspace_id=store.workspace_id, slug=agent_slug)
    return Run.objects.create(
        workspace_id=store.workspace_id,
        agent=agent,
        current_step="start",
        input=input,
        status=status,
    )


def alert(variant: Variant, **fields) -> Alert:
    values = {
        "kind": "low_stock",
        "quantity": 2,
        "days_of_cover": 1.0,
        "daily_sales": 2.0,
        "threshold_days": 7,
        "message": f"{variant.product.title} / {variant.title}: 2 left, about 1 day of sales",
        **fields,
    }
    return Alert.objects.create(
        workspace_id=variant.product.workspace_id,
        connection_id=variant.product.connection_id,
        variant=variant,
        **values,
    )


def order(store, variant: Variant, quantity: int, *, days_ago: int = 1, **fields) -> Order:
    return Order.objects.create(
        workspace_id=store.workspace_id,
        connection=store,
        external_id=Order.objects.count() + 1,
        line_items=[{"variant_id": variant.external_id, "quantity": quantity}],
        placed_at=timezone.now() - timedelta(days=days_ago),
        **fields,
    )


@pytest.fixture
def bilingual(store):
    store.languages = ["en", "es"]
    store.save(update_fields=["languages"])
    return store


# -- products ---------------------------------------------------------------------------------


def test_the_products_page_shows_each_language_s_description_state_and_pending_proposals(
    owner_client, bilingual
):
    thin = product(bilingual, 1, "Thin shirt", body_html="<p>A shirt.</p>")
    full = product(bilingual, 2, "Full shirt")
    product(bilingual, 3, "Bare shirt", body_html="")
    waiting = describe_proposal(bilingual, thin, ["es"])
    full.descriptions = {"es": "<p>Una camisa.</p>"}
    full.save(update_fields=["descriptions"])

    page = owner_client.get("/w/alice/catalog/").content.decode()

    assert '<a href="/w/alice/catalog/" hx-get="/w/alice/catalog/" aria-current="page">' in page
    assert "en thin</span>" in page and "es proposed</span>" in page
    assert "en ok</span>" in page and "es written</span>" in page
    assert "en missing</span>" in page and "es missing</span>" in page
    assert f'href="/w/alice/board/?tab=pending#proposal-{waiting.pk}"' in page
    assert "19.99\N{EN DASH}24.00" in page
    assert page.count(">Describe</button>") == 3


def test_a_viewer_sees_the_products_without_a_describe_button(viewer_client, store):
    product(store, 1)

    page = viewer_client.get("/w/alice/catalog/").content.decode()

    assert "Shirt" in page and ">Describe</button>" not in page


def test_a_workspace_without_a_store_is_pointed_to_the_store_tab(owner_client):
    page = owner_client.get("/w/alice/catalog/").content.decode()

    assert "No store is connected" in page and 'href="/w/alice/catalog/store/"' in page


def test_describe_starts_one_catalog_writer_run_and_a_second_click_starts_none(
    operator_client, store
):
    made = product(store, 7, "Linen shirt")

    first = operator_client.post(f"/w/alice/catalog/products/{made.pk}/describe/")
    again = operator_client.post(
        f"/w/alice/catalog/products/{made.pk}/describe/", HTTP_HX_REQUEST="true"
    )

    run = Run.objects.get()
    assert (run.agent.slug, run.input, run.trigger) == (
        "catalog-writer",
        {"product_id": 7},
        "manual",
    )
    assert first.status_code == 302
    assert first["Location"] == f"/w/alice/catalog/#product-{made.pk}"
    row = again.content.decode()
    assert row.lstrip().startswith(f'<tr id="product-{made.pk}">')
    assert f"already on Linen shirt (run #{run.pk})" in row
    assert f'href="/w/alice/runs/{run.pk}/"' in row


def test_describe_says_plainly_that_the_writer_is_disabled_and_starts_nothing(
    operator_client, store
):
    made = product(store, 7)
    Agent.objects.filter(slug="catalog-writer").update(enabled=False)

    row = operator_client.post(
        f"/w/alice/catalog/products/{made.pk}/describe/", HTTP_HX_REQUEST="true"
    )
    page = operator_client.get("/w/alice/catalog/").content.decode()

    assert "Not started: the catalog writer is disabled" in row.content.decode()
    assert "The catalog writer agent is disabled, so Describe starts nothing" in page
    assert not Run.objects.exists()


def test_describe_without_a_writer_agent_says_how_to_get_one(operator_client, store):
    made = product(store, 7)
    Agent.objects.filter(slug="catalog-writer").delete()

    response = operator_client.post(f"/w/alice/catalog/products/{made.pk}/describe/", follow=True)

    assert "Not started: this workspace has no catalog writer" in response.content.decode()
    assert not Run.objects.exists()


def test_another_workspace_s_product_cannot_be_described(operator_client, store, other_workspace):
    theirs = StoreConnection.objects.create(
        workspace=other_workspace,
        shop_domain="bob.myshopify.com",
        api_base_url="https://bob.myshopify.com",
        access_token_encrypted="x",
    )
    made = product(theirs, 9)

    response = operator_client.post(f"/w/alice/catalog/products/{made.pk}/describe/")

    assert response.status_code == 404 and not Run.objects.exists()


# -- escaping ---------------------------------------------------------------------------------


def test_markup_from_the_shop_and_from_customers_is_shown_as_text(owner_client, store):
    made = product(
        store, 1, f"Shirt {SCRIPT}", body_html="<p>&lt;script&gt;alert(2)&lt;/script&gt;</p>"
    )
    note = message(store, body=f"Hello {SCRIPT}", subject=f"Re {SCRIPT}")
    reply_proposal(store, note, f"Thanks {SCRIPT}")
    alert(made.variants.first(), message=f"low {SCRIPT}")

    pages = "".join(
        owner_client.get(f"/w/alice/catalog/{tab}").content.decode()
        for tab in ("", "messages/", "inventory/")
    )

    assert "<script>alert" not in pages
    assert "Shirt &lt;script&gt;alert(1)&lt;/script&gt;" in pages
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in pages
    assert "Hello &lt;script&gt;" in pages and "Thanks &lt;script&gt;" in pages
    assert "low &lt;script&gt;" in pages


# -- inventory --------------------------------------------------------------------------------


def test_the_inventory_page_puts_open_alerts_first_with_sales_and_days_of_cover(
    owner_client, store
):
    made = product(store, 1, "Mug")
    small, large = made.variants.order_by("position", "pk")
    Variant.objects.filter(pk=small.pk).update(inventory_quantity=100)
    Variant.objects.filter(pk=large.pk).update(inventory_quantity=3)
    order(store, small, 30)  # 1 a day: 100 days of cover
    order(store, large, 60)  # 2 a day: 1.5 days
    order(store, large, 600, days_ago=40)  # before the window
    order(store, large, 600, cancelled_at=timezone.now())  # cancelled
    large.refresh_from_db()
    raised = alert(large, run_id=41)

    page = owner_client.get("/w/alice/catalog/inventory/").content.decode()

    open_section = page[page.index('id="open-alerts"') : page.index('id="stock"')]
    assert f'id="alert-{raised.pk}"' in open_section and 'href="/w/alice/runs/41/"' in open_section
    stock = page[page.index('id="stock"') :]
    assert stock.index(f'id="variant-{large.pk}"') < stock.index(f'id="variant-{small.pk}"')
    assert "<td>2.00</td>" in stock and "<td>1.5</td>" in stock
    assert "<td>1.00</td>" in stock and "<td>100.0</td>" in stock


# -- messages ---------------------------------------------------------------------------------


def test_the_messages_page_shows_each_reply_s_state_text_and_links(owner_client, store):
    quiet = message(store, body="Just saying hi")
    drafting = message(store, body="Do you ship to Spain?", language="en", intent="delivery")
    answered = message(store, body="Where is my order?", language="en", intent="track_order")
    Message.objects.filter(pk=answered.pk).update(confidence=0.87)
    run_of(store, "support", {"message_id": drafting.pk})
    answer_run = run_of(store, "support", {"message_id": answered.pk}, status="succeeded")
    sent = reply_proposal(
        store, answered, "It left our warehouse today.", run=answer_run, status="committed"
    )

    page = owner_client.get("/w/alice/catalog/messages/").content.decode()

    cards = {m.pk: page[page.index(f'id="message-{m.pk}"') :] for m in (quiet, drafting, answered)}
    assert "reply not yet" in cards[quiet.pk][:600]
    assert "reply being written" in cards[drafting.pk][:600]
    card = cards[answered.pk].split("</article>")[0]
    assert "reply sent" in card and "It left our warehouse today." in card
    assert "in English · about: track order (87 % sure)" in card
    assert f'href="/w/alice/runs/{answer_run.pk}/"' in card
    assert f'href="/w/alice/board/?tab=committed#proposal-{sent.pk}"' in card
    # Newest first.
    assert page.index(f'id="message-{answered.pk}"') < page.index(f'id="message-{quiet.pk}"')


# -- the store --------------------------------------------------------------------------------


def _connect(client, **fields):
    form = {
        "shop_domain": "new-shop.myshopify.com",
        "access_token": "shpat_new",
        "webhook_secret": "whsec-new-0123456789",
        "languages": "en, es",
        **fields,
    }
    return client.post("/w/alice/catalog/store/connect/", form)


def test_an_owner_connects_a_store_with_the_form(owner_client, workspace):
    response = _connect(owner_client, previous_webhook_secret="whsec-old-0123456789")

    assert response.status_code == 302 and response["Location"] == "/w/alice/catalog/store/"
    store = StoreConnection.objects.get(workspace=workspace)
    assert (store.shop_domain, store.languages) == ("new-shop.myshopify.com", ["en", "es"])
    assert store.api_base_url == "https://new-shop.myshopify.com"
    assert store.webhook_secrets == ["whsec-new-0123456789", "whsec-old-0123456789"]
    assert Agent.objects.filter(workspace=workspace, slug="catalog-writer").exists()
    page = owner_client.get("/w/alice/catalog/store/").content.decode()
    assert "http://testserver/api/v1/webhooks/shopify" in page
    assert "shpat_new" not in page and "whsec-new" not in page


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"shop_domain": "not a shop!"}, "Not a shop domain"),
        ({"shop_domain": SHOP.upper()}, f"{SHOP} is connected already."),
        ({"languages": "en, <b>"}, "Language codes such as en"),
        ({"api_base_url": "ftp:/nowhere"}, "Enter a valid URL."),
        ({"webhook_secret": ""}, "This field is required."),
    ],
)
def test_the_store_form_shows_what_is_wrong_and_connects_nothing(
    owner_client, other_workspace, fields, error
):
    StoreConnection.objects.create(
        workspace=other_workspace,
        shop_domain=SHOP,
        api_base_url=f"https://{SHOP}",
        access_token_encrypted="x",
    )

    response = _connect(owner_client, **fields)

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not StoreConnection.objects.filter(workspace__slug="alice").exists()


def test_the_store_form_is_for_owners_only(client, operator):
    client.force_login(operator)

    assert "Connect</button>" not in client.get("/w/alice/catalog/store/").content.decode()
    assert _connect(client).status_code == 403
    assert not StoreConnection.objects.exists()


def test_the_test_webhook_verifies_and_stores_one_event_without_applying_it(operator_client, store):
    made = product(store, 5, "Mug")

    response = operator_client.post(
        f"/w/alice/catalog/store/{store.pk}/test-webhook/", HTTP_HX_REQUEST="true"
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "Test delivery: <strong>200</strong> received" in page
    event = WebhookEvent.objects.get()
    assert (event.topic, event.body["id"], event.status) == ("products/update", 5, "ignored")
    assert event.webhook_id.startswith("aios-test-") and event.api_version == store.api_version
    assert f'id="event-{event.pk}"' in page and "not applied" in page
    made.refresh_from_db()
    assert made.source_updated_at is None and not Run.objects.exists()


def test_the_test_webhook_of_a_store_without_products_sends_a_sample(operator_client, store):
    response = operator_client.post(f"/w/alice/catalog/store/{store.pk}/test-webhook/")

    assert "Test delivery: <strong>200</strong> received" in response.content.decode()
    assert WebhookEvent.objects.get().body["title"] == "AIOS test product"
    assert not Product.objects.exists()


# -- roles and tenancy -----------------------------------------------------------------------

PAGES = ["", "inventory/", "messages/", "store/"]


def _posts(store) -> list[str]:
    made = product(store, 1)
    return [
        f"/w/alice/catalog/products/{made.pk}/describe/",
        "/w/alice/catalog/store/connect/",
        f"/w/alice/catalog/store/{store.pk}/test-webhook/",
    ]


def test_a_viewer_sees_every_catalog_page_but_every_post_is_403(viewer_client, store):
    for tab in PAGES:
        assert viewer_client.get(f"/w/alice/catalog/{tab}").status_code == 200
    for path in _posts(store):
        assert viewer_client.post(path).status_code == 403
    assert not Run.objects.exists() and not WebhookEvent.objects.exists()


def test_an_outsider_gets_404_on_every_catalog_page_and_post(outsider_client, store):
    for tab in PAGES:
        assert outsider_client.get(f"/w/alice/catalog/{tab}").status_code == 404
    for path in _posts(store):
        assert outsider_client.post(path).status_code == 404
    assert not Run.objects.exists() and not WebhookEvent.objects.exists()


def test_a_post_without_the_csrf_token_is_refused(owner, store):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)

    response = client.post(f"/w/alice/catalog/store/{store.pk}/test-webhook/")

    assert response.status_code == 403 and not WebhookEvent.objects.exists()


def test_the_catalog_tabs_answer_an_htmx_navigation_with_their_content_only(owner_client, store):
    for tab in PAGES:
        page = owner_client.get(f"/w/alice/catalog/{tab}", HTTP_HX_REQUEST="true").content
        assert b"<html" not in page and b"<h1>Catalog</h1>" in page


# -- query counts -----------------------------------------------------------------------------


def _fill(store, numbers: range) -> None:
    """A product with a draft waiting, and a message with its reply waiting, per number."""
    for n in numbers:
        made = product(store, n, f"Shirt {n}", body_html="<p>Thin.</p>")
        describe_proposal(store, made, ["en"])
        alert(made.variants.first())
        note = message(store, body=f"Question {n}")
        run = run_of(store, "support", {"message_id": note.pk}, status="waiting")
        reply_proposal(store, note, f"Answer {n}", run=run)


# The same for 2 rows as for 20. Seven are the shell's: session, user, membership, the
# switcher's workspaces, and saving the session (a savepoint, the update, its release).
# Products: count, page, variants, pending proposals, the writer agent, "has a store?".
# Messages: count, page, the reply proposals, the runs. Inventory: variants, the window's
# orders, open alerts (for the rows, then for the list at the top), resolved alerts.
QUERIES = {"": 13, "messages/": 11, "inventory/": 12}


@pytest.mark.parametrize("tab", ["", "messages/", "inventory/"])
def test_a_catalog_page_costs_the_same_queries_for_two_rows_as_for_twenty(
    owner_client, store, tab, django_assert_max_num_queries
):
    _fill(store, range(1, 3))
    owner_client.get(f"/w/alice/catalog/{tab}")  # the session settles
    with django_assert_max_num_queries(QUERIES[tab]):
        assert owner_client.get(f"/w/alice/catalog/{tab}").status_code == 200

    _fill(store, range(3, 21))
    with django_assert_max_num_queries(QUERIES[tab]):
        assert owner_client.get(f"/w/alice/catalog/{tab}").status_code == 200


def test_board_cards_name_their_products_variants_and_messages_of_the_workspace_only(
    owner_client, store, other_workspace
):
    product(store, 7, title="Linen <b>shirt</b>")
    question = message(store, customer_name="Ana", subject="Where is my order?")
    proposal(store, "catalog-writer", "catalog.update_description", "product:7", {"product_id": 7})
    proposal(store, "inventory-watcher", "core.note", "variant:71", {"content": "restock"})
    proposal(store, "support", "catalog.send_reply", f"message:{question.pk}", {"body": "Hi"})
    # The same reference in another workspace is not this one's to name.
    other_store = StoreConnection.objects.create(
        workspace=other_workspace, shop_domain="other.myshopify.com", access_token_encrypted="x"
    )
    Product.objects.create(
        workspace=other_workspace, connection=other_store, external_id=8, title="Their secret"
    )
    proposal(store, "catalog-writer", "catalog.update_description", "product:8", {"product_id": 8})

    page = owner_client.get(f"/w/{store.workspace.slug}/board/").content.decode()

    assert ">New description for Linen &lt;b&gt;shirt&lt;/b&gt;</h3>" in page
    assert ">Save a note about Linen &lt;b&gt;shirt&lt;/b&gt; · Large</h3>" in page
    assert ">Reply to Ana about “Where is my order?”</h3>" in page
    assert "Their secret" not in page and ">New description for a product</h3>" in page
