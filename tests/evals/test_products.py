"""The product-descriptions set runs through the real description writer, proposing nothing:
each description is scored on its language, the facts it must state, the materials it must
not invent, its checks and what the policy would have done with it."""

from __future__ import annotations

import json

import pytest

from agents.evals import datasets
from agents.models import Agent, EvalRun, Run
from approvals.models import Proposal
from catalog.models import Product
from tests.evals.conftest import run_eval
from tests.fakes.openai_server import Reply

pytestmark = pytest.mark.django_db

SHIRT = 4  # en, es, fr, de of the demo store's linen shirt come first


def _eval(workspace, *, provider="", limit=SHIRT) -> EvalRun:
    return run_eval(workspace, "product-descriptions", provider=provider, limit=limit)


def test_the_shipped_products_are_checked_and_labelled_by_their_rules():
    items = datasets.load_products()

    assert len(items) == 100 and len({item.id for item in items}) == 100
    assert {item.language for item in items} == {"en", "es", "fr", "de"}
    shirt = next(item for item in items if item.id == "en-demo-linen-shirt")
    assert shirt.must_contain == ("170 g/m²", "30 °C", "linen")
    assert "polyester" in shirt.must_not_contain and "linen" not in shirt.must_not_contain
    for item in items:  # a required fact is the product's own; a forbidden one is not
        own = f"{item.title} {item.body_html} {item.tags}".lower()
        assert all(fact.lower() in own for fact in item.must_contain if item.language == "en")
        assert not any(word in own for word in item.must_not_contain)


def test_a_bad_product_line_is_refused_with_its_number(tmp_path, monkeypatch):
    good = datasets.DATA / "product-descriptions.jsonl"
    line = json.loads(good.read_text(encoding="utf-8").splitlines()[0])
    bad = tmp_path / "product-descriptions.jsonl"
    bad.write_text(
        json.dumps(line) + "\n" + json.dumps({**line, "id": "x", "variants": [{"price": "cheap"}]}),
        encoding="utf-8",
    )
    monkeypatch.setattr(datasets, "DATA", tmp_path)

    with pytest.raises(datasets.DatasetError, match="line 2: variants must be"):
        datasets.load_products()


def test_the_local_tier_alone_describes_each_product_from_its_template_and_changes_nothing(
    shop, workspace
):
    before = list(Product.objects.values_list("pk", "body_html"))

    done = _eval(workspace)

    assert done.status == "done" and done.scores["items"] == SHIRT and done.scores["errors"] == 0
    results = {r.item_id: r for r in done.results.all()}
    assert {r.tier for r in results.values()} == {"template"}
    english = results["en-demo-linen-shirt"]
    assert english.draft and "linen" in english.draft.lower()
    assert english.decision == "require_approval", "a description waits for a person"
    assert Proposal.objects.count() == 0
    assert list(Product.objects.values_list("pk", "body_html")) == before
    assert done.scores["intent_accuracy"] is None, "products have no intent to score"
    assert (
        Run.objects.filter(trigger="eval", agent__pipeline="catalog.describe_product").count()
        == SHIRT
    )


def test_a_model_that_invents_a_material_is_caught_and_scored(workspace, candidate):
    honest = (
        "A relaxed shirt in washed European linen, 170 g/m², that softens with every wash. "
        "Mother-of-pearl buttons and a single chest pocket. Machine wash at 30 °C."
    )
    inventing = "A relaxed shirt in soft leather and linen, 170 g/m². Machine wash at 30 °C."
    candidate.script(Reply(honest), Reply(inventing), Reply(inventing))

    done = _eval(workspace, provider="candidate", limit=2)

    results = {r.item_id: r for r in done.results.all()}
    right = results["en-demo-linen-shirt"]
    assert right.tier == "remote" and right.missing == [] and right.forbidden == []
    assert right.checks_failed == []
    # The Spanish item: the model wrote English, and invented leather, twice; the template
    # stands in, and the card would show the drafts thrown away.
    spanish = results["es-demo-linen-shirt"]
    assert spanish.tier == "template" and "leather" not in spanish.draft.lower()
    assert done.scores["said_what_it_must_not"] == 0
    assert done.scores["grounded_items"] == 2


def test_a_product_of_an_eval_cannot_be_slipped_into_an_ordinary_run(shop, workspace):
    from agents.services import run_start
    from tests.agents.conftest import drive

    agent = Agent.objects.get(workspace=workspace, pipeline="catalog.describe_product")
    item = datasets.load_products()[0]
    run, _ = run_start(
        agent=agent, input={"eval_product": {"id": item.id, "title": item.title, "variants": []}}
    )
    drive(run)

    run.refresh_from_db()
    assert run.status == "failed" and "only in an eval's run" in run.error


def test_the_eval_page_shows_each_description_and_what_would_happen_to_it(
    shop, workspace, viewer_client
):
    done = _eval(workspace, limit=2)

    page = viewer_client.get(f"/w/alice/evals/{done.pk}/").content.decode()

    assert "Product descriptions: 100 products in 4 languages" in page
    assert "en-demo-linen-shirt" in page and "es-demo-linen-shirt" in page
    assert page.count("Would wait for you") == 2
    assert "With every fact they must state" in page
    assert "% sure" not in page, "a product has no intent to be sure of"
