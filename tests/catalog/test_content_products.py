"""A content draft names only the products its brief is about: research keeps the products
whose title shares a distinctive word with the brief, and the `products` check fails a
draft, a model's or a template's, that names another product of the shop."""

from __future__ import annotations

import pytest

from agents.models import Run
from approvals.models import Proposal
from catalog.checks import products_check
from catalog.content.pipeline import is_about
from catalog.content.services import brief_create
from catalog.content.tools import product_titles
from catalog.models import Product
from catalog.services import product_remember
from memory.services import Source, memory_write
from tests.agents.conftest import drive
from tests.fakes.openai_server import Reply

pytestmark = pytest.mark.django_db

OUTLINE = "Angle: linen keeps cyclists cool.\n1. Flax\n2. Drying fast\n3. The shirt"


def _product(store, external_id: int, title: str, product_type: str, body: str) -> Product:
    product = Product.objects.create(
        workspace=store.workspace,
        connection=store,
        external_id=external_id,
        title=title,
        product_type=product_type,
        vendor="Fern & Flax",
        body_html=f"<p>{body}</p>",
    )
    product_remember(product, source=Source("catalog"))
    return product


@pytest.fixture
def shop(store):
    """A shop of a linen shirt and two products no linen brief is about."""
    _product(store, 1, "Linen shirt", "Shirt", "Cut for riding to work.")
    _product(store, 2, "Beeswax candle", "Candle", "Hand-poured, burns slowly.")
    _product(store, 3, "Chunky knit throw", "Throw", "Warm on the sofa.")
    return store


def _run(workspace, owner, **fields) -> Run:
    brief = brief_create(
        workspace=workspace,
        user=owner,
        **{
            "topic": "Linen shirts for cycling to work",
            "audience": "commuters",
            "channels": ["social"],
            "languages": ["en"],
            **fields,
        },
    )
    return drive(Run.objects.get(pk=brief.run_id))


def _draft_checks(run: Run, key: str) -> dict[str, dict]:
    return {check["check"]: check for check in run.state["drafts"][key]["checks"]}


def test_a_model_draft_naming_a_product_the_brief_is_not_about_is_written_again_then_stands_in(
    workspace, owner, shop, fake_openai
):
    naming = Reply("Ride in our linen shirt, then unwind with a beeswax candle.")
    fake_openai.script(Reply(OUTLINE), naming, naming)

    run = _run(workspace, owner)

    proposal = Proposal.objects.get(run=run)
    assert proposal.payload["drafted_by"]["social.en"] == "template"
    thrown = proposal.payload["failed_drafts"]
    assert [d["text"] for d in thrown] == [naming.content] * 2  # written once more, no more
    assert thrown[0]["failed"] == [
        "products: names products the brief is not about: Beeswax candle"
    ]
    assert len(fake_openai.requests) == 3  # the outline, the draft, its one regeneration
    regeneration = fake_openai.requests[2]["messages"][-1]["content"]
    assert "names products the brief is not about: Beeswax candle" in regeneration
    assert any(row["field"].startswith("draft thrown away in English") for row in proposal.diff)
    assert "failed its checks (products: names products" in proposal.rationale
    assert _draft_checks(run, "social.en")["products"]["ok"] is True  # the template's
    assert proposal.status == "pending"


def test_a_template_draft_for_a_brief_about_one_product_names_only_that_product(
    workspace, owner, shop
):
    run = _run(workspace, owner, channels=["blog"])  # no model: the template writes

    proposal = Proposal.objects.get(run=run)
    body = proposal.payload["blog.en.body"]
    assert "Linen shirt (Shirt by Fern & Flax)." in body
    assert "candle" not in body.lower() and "throw" not in body.lower()
    assert [item["key"] for item in run.state["memory"]["products"]] == ["product:1"]
    assert _draft_checks(run, "blog.en")["products"] == {
        "check": "products",
        "language": "en",
        "ok": True,
        "detail": "names only the products it is about",
    }
    assert proposal.payload["checks"] == []
    assert "blog.en: All checks passed." in proposal.rationale


def test_a_model_draft_naming_the_briefs_own_product_passes_and_sees_only_its_facts(
    workspace, owner, shop, fake_openai
):
    fake_openai.script(Reply(OUTLINE), Reply("Our Linen Shirts keep you cool on the ride."))

    run = _run(workspace, owner)

    proposal = Proposal.objects.get(run=run)
    assert proposal.payload["drafted_by"]["social.en"] == "remote"
    assert proposal.payload["failed_drafts"] == [] and proposal.payload["checks"] == []
    assert _draft_checks(run, "social.en")["products"]["ok"] is True
    draft_request = fake_openai.requests[-1]["messages"][1]["content"]
    assert "Cut for riding to work." in draft_request
    assert "Beeswax" not in draft_request and "Chunky knit" not in draft_request
    assert {"namespace": "products", "key": "product:2", "version": 1} not in proposal.sources


def test_a_template_draft_that_names_another_product_never_shows_all_checks_passed(
    workspace, owner, shop
):
    memory_write(  # a linen fact, not from the catalog, that names the shop's candle
        workspace=workspace,
        namespace="products",
        key="product:linen-kit",
        kind="fact",
        content="Linen shirts for cycling to work, sold with a Beeswax candle.",
        source=Source("catalog"),
        language="en",
    )

    run = _run(workspace, owner, channels=["blog"])

    proposal = Proposal.objects.get(run=run)
    assert "Beeswax candle" in proposal.payload["blog.en.body"]
    assert proposal.payload["checks"] == [
        {
            "draft": "blog.en",
            "check": "products",
            "language": "en",
            "ok": False,
            "detail": "names products the brief is not about: Beeswax candle",
        }
    ]
    assert "All checks passed" not in proposal.rationale
    assert (
        "Check before approving: in English, names products the brief is not about"
        in proposal.rationale
    )


def test_a_product_is_named_whatever_the_case_and_number():
    others = ("Beeswax candle", "Linen napkins, set of 4")
    assert not products_check("Light a BEESWAX CANDLE tonight.", "en", others).ok
    assert not products_check("Two beeswax candles.", "en", others).ok
    assert not products_check("Our linen Napkins are back.", "en", others).ok
    assert products_check("Beeswax wraps and linen shirts.", "en", others).ok


def test_a_brief_is_about_the_products_that_share_a_distinctive_word_of_their_title():
    about = "Linen shirts for cycling to work commuters"
    assert is_about(about, "Linen shirt")
    assert is_about("Camisas de lino", "Linen shirt")  # a material in any shop language
    assert not is_about(about, "Denim work apron")  # "work" says what for, not which
    assert not is_about(about, "Stoneware mug")


def test_the_shops_product_titles_are_its_own(workspace, other_workspace, shop):
    from catalog.services import store_connect

    theirs = store_connect(
        workspace=other_workspace,
        shop_domain="bob-shop.myshopify.com",
        access_token="shpat_y",
        webhook_secrets=["bob-secret-0123456789"],
        actor=Source("catalog").actor,
    )
    Product.objects.create(
        workspace=other_workspace, connection=theirs, external_id=9, title="Stoneware mug"
    )
    Product.objects.filter(external_id=3).update(deleted_at="2024-01-01T00:00:00Z")

    assert product_titles(workspace_id=workspace.pk) == [
        {"product_id": 2, "title": "Beeswax candle"},
        {"product_id": 1, "title": "Linen shirt"},
    ]
