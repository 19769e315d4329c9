"""Prices, the cost ledger and hard budgets, around real calls to a local OpenAI server."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agents.llm import budgets
from agents.models import BudgetCounter, CostEntry, JournalEntry, ModelPrice, Run
from agents.services import agent_update, run_start, runs_sweep
from approvals.audit import SETUP
from tests.agents.conftest import drive
from tests.fakes.openai_server import Reply
from tests.helpers import at_once


@pytest.fixture
def priced(db):
    # 2.00 per million input tokens, 6.00 per million output tokens
    return ModelPrice.objects.create(
        model="qwen-plus", input_per_million=Decimal("2"), output_per_million=Decimal("6")
    )


def ask(agent, question="Say hello in French"):
    return drive(run_start(agent=agent, input={"question": question})[0])


@pytest.mark.django_db
def test_every_call_lands_in_the_ledger_with_its_cost(make_agent, fake_openai, priced):
    fake_openai.script(
        Reply(content="Bonjour !", usage={"prompt_tokens": 1000, "completion_tokens": 500})
    )
    run = ask(make_agent("demo.ask_model"))

    [entry] = CostEntry.objects.all()
    expected = Decimal("0.005")  # 1000 * 2/1M + 500 * 6/1M
    assert (entry.model, entry.tier, entry.prompt_tokens, entry.completion_tokens) == (
        "qwen-plus",
        "remote",
        1000,
        500,
    )
    assert entry.cost == expected and entry.run == run and entry.step == "start"
    assert JournalEntry.objects.get(run=run).cost == expected
    assert Run.objects.get(pk=run.pk).cost == expected
    assert fake_openai.requests[0]["max_tokens"] == 1024  # the bound the reservation used


@pytest.mark.django_db
def test_a_call_that_would_cross_a_cap_is_refused_and_the_run_waits(
    make_agent, fake_openai, priced
):
    agent = make_agent("demo.ask_model", daily_budget=Decimal("0.001"))

    run = ask(agent)

    assert run.status == "waiting" and run.waiting_for["kind"] == "budget"
    assert run.waiting_for["question"].startswith("Budget reached: the agent daily budget")
    assert fake_openai.requests == []  # nothing was paid for
    assert not BudgetCounter.objects.filter(reserved__gt=0).exists()  # nothing held either

    agent_update(agent=agent, daily_budget=Decimal("1"), actor=SETUP)  # raising it resumes the run

    assert drive(run).status == "succeeded"
    counter = BudgetCounter.objects.get(agent=agent, period="day")
    assert counter.reserved == 0 and counter.spent == CostEntry.objects.get().cost > 0


@pytest.mark.django_db
def test_a_budget_wait_resumes_when_the_period_renews(make_agent, fake_openai, priced, workspace):
    workspace.daily_budget = Decimal("0.001")
    workspace.save()
    run = ask(make_agent("demo.ask_model"))
    assert run.waiting_for["kind"] == "budget"
    yesterday = (timezone.now() - timedelta(days=1)).date()
    BudgetCounter.objects.update(period_start=yesterday)  # the day has passed
    Run.objects.filter(pk=run.pk).update(
        waiting_for={**run.waiting_for, "renews_at": timezone.now().isoformat()}
    )
    workspace.daily_budget = Decimal("1")  # a new day, and a budget the call fits in
    workspace.save()

    assert runs_sweep()["renewed"] == 1
    assert drive(run).status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_concurrent_reservations_never_pass_a_cap(make_agent):
    agent = make_agent("demo.ask_model", daily_budget=Decimal("1.0"))
    granted, refused = [], []

    def spend() -> None:
        try:
            reservation = budgets.reserve(agent=agent, amount=Decimal("0.1"))
            budgets.settle(reservation, Decimal("0.1"))
            granted.append(reservation)
        except budgets.BudgetReached:
            refused.append(1)

    at_once([spend] * 25)

    counter = BudgetCounter.objects.get(agent=agent, period="day")
    assert (len(granted), len(refused)) == (10, 15)
    assert counter.spent == Decimal("1.0") and counter.reserved == 0


@pytest.mark.django_db
def test_a_workspace_price_overrides_the_default(workspace, priced):
    ModelPrice.objects.create(
        workspace=workspace,
        model="qwen-plus",
        input_per_million=Decimal("1"),
        output_per_million=Decimal("1"),
    )

    price = budgets.price_for(workspace_id=workspace.pk, model="qwen-plus")

    assert price.workspace == workspace
    assert budgets.price_for(workspace_id=workspace.pk + 1, model="qwen-plus") == priced


@pytest.mark.django_db
def test_costs_are_reported_by_agent_model_and_day(
    client, owner, outsider, make_agent, fake_openai, priced
):
    from aios_site.accounts.services import token_create

    fake_openai.script(
        *[Reply(content="ok", usage={"prompt_tokens": 1000, "completion_tokens": 0})] * 3
    )
    ask(make_agent("demo.ask_model", slug="writer"))
    ask(make_agent("demo.ask_model", slug="replier"))
    ask(make_agent("demo.ask_model", slug="replier"))
    auth = {
        "HTTP_AUTHORIZATION": "Bearer "
        + token_create(membership=owner.memberships.get(), name="t")[1]
    }

    by_agent = client.get("/api/v1/costs?group_by=agent", **auth).json()
    by_model = client.get("/api/v1/costs?group_by=model", **auth).json()
    [by_day] = client.get("/api/v1/costs?group_by=day", **auth).json()

    assert [(row["key"], row["calls"], row["cost"]) for row in by_agent] == [
        ("replier", 2, "0.004000"),
        ("writer", 1, "0.002000"),
    ]
    assert [(row["key"], row["prompt_tokens"]) for row in by_model] == [("qwen-plus", 3000)]
    assert by_day["key"] == timezone.localdate().isoformat() and by_day["calls"] == 3
    assert client.get("/api/v1/costs?group_by=week", **auth).status_code == 422
    client.force_login(outsider)
    assert client.get("/api/v1/costs?workspace=bob").json() == []


@pytest.mark.django_db
def test_an_opted_in_repeat_request_is_served_from_the_cache_at_no_cost(
    make_agent, fake_openai, priced
):
    from django.core.cache import cache

    cache.clear()
    agent = make_agent("demo.ask_model")
    question = {"question": "What are your opening hours?", "cache": True}

    first = drive(run_start(agent=agent, input=question)[0])
    second = drive(run_start(agent=agent, input=question)[0])
    uncached = drive(run_start(agent=agent, input={"question": "What are your opening hours?"})[0])

    assert first.outcome == second.outcome == uncached.outcome
    assert len(fake_openai.requests) == 2  # the first and the one that did not opt in
    ledger = list(CostEntry.objects.order_by("pk").values_list("run_id", "cache_hit", "cost"))
    assert [(run_id, hit) for run_id, hit, _ in ledger] == [
        (first.pk, False),
        (second.pk, True),
        (uncached.pk, False),
    ]
    assert ledger[1][2] == 0 and ledger[0][2] > 0
    assert Run.objects.get(pk=second.pk).cost == 0
