"""The content-briefs set runs through the real content writer, proposing nothing: its posts
are scored on their language, what they must state and the shop's products they must not
name (those the brief is not about)."""

from __future__ import annotations

import json

import pytest

from agents.evals import datasets, runner
from agents.models import Run
from aios_site.core.actors import SETUP
from approvals.models import Proposal
from catalog.content.services import content_agent_ensure
from catalog.models import ContentBrief, Product
from catalog.services import product_remember
from memory.services import Source
from tests.evals.conftest import run_eval
from tests.fakes.openai_server import Reply

pytestmark = pytest.mark.django_db

TITLES = ("Linen shirt", "Linen napkins, set of 4", "Beeswax candle", "Stoneware mug")


@pytest.fixture
def writer(shop, workspace):
    """The shop's content writer, and four of the demo store's products in memory."""
    for number, title in enumerate(TITLES, start=1):
        product = Product.objects.create(
            workspace=workspace,
            connection=shop,
            external_id=number,
            title=title,
            vendor="Fern & Flax",
            body_html=f"<p>{title} from Fern &amp; Flax.</p>",
        )
        product_remember(product, source=Source("catalog"))
    return content_agent_ensure(workspace=workspace, actor=SETUP)


def _eval(workspace, provider="", limit=1):
    return run_eval(workspace, "content-briefs", provider=provider, limit=limit)


def test_the_shipped_briefs_are_checked_and_name_what_they_are_not_about():
    briefs = datasets.load_briefs()

    assert len(briefs) == 20 and len({b.language for b in briefs}) == 6
    linen = next(b for b in briefs if b.id == "en-linen-summer")
    assert "Beeswax candle" in linen.must_not_contain
    assert "Linen shirt" not in linen.must_not_contain


def test_a_bad_brief_line_is_refused_with_its_number(tmp_path, monkeypatch):
    line = json.loads((datasets.DATA / "content-briefs.jsonl").read_text().splitlines()[0])
    (tmp_path / "content-briefs.jsonl").write_text(
        json.dumps({**line, "channels": ["billboard"]}), encoding="utf-8"
    )
    monkeypatch.setattr(datasets, "DATA", tmp_path)

    with pytest.raises(datasets.DatasetError, match="line 1: channels must be some of"):
        datasets.load_briefs()


def test_a_model_that_names_a_product_the_brief_is_not_about_is_caught_and_changes_nothing(
    writer, workspace, candidate
):
    naming = Reply("Linen shirts love summer. Light a beeswax candle and relax.")
    candidate.script(Reply("1. Washing\n2. Drying"), naming, naming)

    done = _eval(workspace, provider="candidate")

    result = done.results.get()
    assert result.item_id == "en-linen-summer" and result.error == ""
    assert result.tier == "template", "the model's drafts named the candle twice"
    assert result.forbidden == [] and "beeswax" not in result.draft.lower()
    assert result.decision == "require_approval"
    assert Proposal.objects.count() == 0 and ContentBrief.objects.count() == 0
    assert Run.objects.filter(trigger="eval", agent=writer).count() == 1


def test_the_local_tier_alone_writes_the_brief_from_its_templates(writer, workspace):
    done = _eval(workspace, limit=2)

    assert done.scores["items"] == 2 and done.scores["errors"] == 0
    assert done.scores["said_what_it_must_not"] == 0
    assert {r.tier for r in done.results.all()} == {"template"}


def test_a_workspace_without_a_content_writer_is_told_how_to_get_one(shop, workspace):
    with pytest.raises(runner.EvalError, match="no enabled agent to evaluate: the content writer"):
        runner.eval_start(workspace=workspace, dataset="content-briefs")


def test_an_eval_brief_cannot_be_slipped_into_an_ordinary_run(writer):
    from agents.services import run_start
    from tests.agents.conftest import drive

    run, _ = run_start(
        agent=writer, input={"eval_brief": {"topic": "x", "channels": ["blog"], "languages": []}}
    )
    drive(run)

    run.refresh_from_db()
    assert run.status == "failed" and "only in an eval's run" in run.error
