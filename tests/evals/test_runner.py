"""Evals run the shipped dataset through the real reply pipeline and propose nothing: no card,
no message in the inbox, no reply sent; every model call is in the ledger; two configurations
compare item by item."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from agents.evals import runner
from agents.models import CostEntry, EvalResult, EvalRun, Run
from agents.services import models as model_services
from approvals.models import Proposal
from catalog.models import Message
from tests.fakes.openai_server import Reply

pytestmark = pytest.mark.django_db

FIRST = 6  # en-001 … en-006: order status, late orders, delivery questions


def _eval(workspace, provider: str = "", limit: int = FIRST) -> EvalRun:
    started = runner.eval_start(
        workspace=workspace, dataset="support-messages", provider=provider, limit=limit
    )
    return runner.eval_execute(eval_run_id=started.pk, limit=limit)


def test_an_eval_of_the_local_tier_scores_every_item_and_proposes_nothing(shop, workspace):
    done = _eval(workspace)

    assert done.status == "done" and done.scores["items"] == FIRST == done.items
    assert done.scores["errors"] == 0
    assert Proposal.objects.count() == 0 and Message.objects.count() == 0
    assert mail.outbox == []
    results = {r.item_id: r for r in done.results.all()}
    assert set(results) == {f"en-00{n}" for n in range(1, FIRST + 1)}
    assert all(r.detected_language == "en" for r in results.values())
    assert done.scores["language_accuracy"] == 1.0
    # Nothing remote: the drafts fall back to the shop's templates, and say so.
    assert {r.tier for r in results.values()} <= {"template"}
    assert CostEntry.objects.filter(tier="remote").count() == 0
    late = results["en-002"]  # "Order #1020 is a WEEK late … This is ridiculous"
    assert late.decision == "require_approval"
    runs = Run.objects.filter(trigger="eval")
    assert runs.count() == FIRST and {r.status for r in runs} == {"succeeded"}


def test_what_the_policy_would_let_out_is_counted_and_checked_against_the_labels(shop, workspace):
    done = _eval(workspace, limit=40)

    auto = [r for r in done.results.all() if r.auto_sent]
    assert auto, "the first 40 hold order-status questions the classifier is sure of"
    assert done.scores["auto_sent"] == len(auto)
    assert done.scores["auto_right"] == sum(r.auto_right for r in auto)
    for result in auto:  # the default rule: templated order status, sure, low risk
        assert result.tier == "template" and result.confidence >= 0.70
        assert result.predicted_intent in {"track_order", "delivery_period"}
    for result in done.results.filter(intent__in=["get_refund", "complaint"]):
        assert not result.auto_sent


def test_an_eval_with_a_provider_uses_it_for_every_remote_call_and_pays_for_them(
    shop, workspace, fake_openai
):
    model_services.provider_save(
        workspace=workspace,
        name="candidate",
        base_url=fake_openai.base_url,
        model_small="candidate-small",
        model_large="candidate-large",
    )
    fake_openai.script(*[Reply("Thanks for writing, we will look into it.")] * 20)

    done = _eval(workspace, provider="candidate")

    assert done.status == "done" and done.label == "candidate"
    models = {r["model"] for r in fake_openai.requests + fake_openai.classify_requests}
    assert models <= {"candidate-small", "candidate-large"} and models
    ledger = CostEntry.objects.filter(tier="remote", run__trigger="eval")
    assert ledger.count() == len(fake_openai.requests) + len(fake_openai.classify_requests)
    assert Decimal(done.scores["cost"]) == sum(r.cost for r in done.results.all())
    assert Proposal.objects.count() == 0


def test_two_configurations_compare_item_by_item_with_the_differences_first(
    shop, workspace, fake_openai
):
    model_services.provider_save(
        workspace=workspace, name="candidate", base_url=fake_openai.base_url, model_small="c-s"
    )
    local = _eval(workspace, limit=3)
    fake_openai.classify_as(*[["get_refund"]] * 3)
    remote = _eval(workspace, provider="candidate", limit=3)

    rows = runner.compared(local, remote)

    assert [row["item_id"] for row in rows if not row["differs"]] == [
        row["item_id"] for row in rows[len([r for r in rows if r["differs"]]) :]
    ]
    assert {row["item_id"] for row in rows} == {"en-001", "en-002", "en-003"}


def test_aios_eval_prints_the_scorecard_and_refuses_what_it_cannot_run(shop, workspace):
    out = StringIO()

    call_command(
        "eval", "support-messages", "--workspace", workspace.slug, "--limit", "2", stdout=out
    )

    printed = out.getvalue()
    assert "the local tier alone" in printed and "intent right" in printed
    assert "sent by themselves" in printed and "of those, right" in printed
    assert EvalResult.objects.count() == 2
    with pytest.raises(CommandError, match="no provider named 'nope'"):
        call_command(
            "eval", "support-messages", "--workspace", workspace.slug, "--provider", "nope"
        )
    with pytest.raises(CommandError, match="no dataset named 'nothing'"):
        call_command("eval", "nothing", "--workspace", workspace.slug)


def test_an_eval_item_cannot_be_slipped_into_an_ordinary_run(shop, workspace):
    from agents.models import Agent
    from agents.services import run_start
    from tests.agents.conftest import drive

    support = Agent.objects.get(workspace=workspace, slug="support")
    run, _ = run_start(
        agent=support, input={"eval_item": {"id": "x", "subject": "hi", "body": "hi"}}
    )

    assert drive(run).status == "failed"
    assert "only in an eval's run" in run.error
    assert Proposal.objects.count() == 0


def test_a_workspace_without_a_support_agent_cannot_start_an_eval(workspace):
    with pytest.raises(runner.EvalError, match="no enabled agent to evaluate: the support agent"):
        runner.eval_start(workspace=workspace, dataset="support-messages")
