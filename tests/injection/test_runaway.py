"""Excessive agency over time: a pipeline that goes round until a model says "done", with a
model that never does. The step limit stops it with a clear error after a bounded number of
calls; with a small budget and a priced model, the budget stops it first, having spent no
more than the budget."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agents.models import BudgetCounter, Checkpoint, CostEntry, ModelPrice
from agents.services import agent_update, run_start
from approvals.audit import SETUP
from tests.agents.conftest import drive
from tests.fakes.openai_server import Reply

pytestmark = pytest.mark.django_db

LOOP = {"capability": "plan"}  # the small remote model is asked, round after round


def test_a_loop_a_model_keeps_alive_is_stopped_by_the_step_limit(make_agent, model, settings):
    settings.AIOS_RUN_MAX_STEPS = 12
    model.script(*[Reply("more") for _ in range(40)])

    run = drive(run_start(agent=make_agent("demo.loop"), input=LOOP)[0])

    assert run.status == "failed"
    assert run.error == "step limit reached: 12 steps (AIOS_RUN_MAX_STEPS)"
    assert len(model.requests) == 12  # one call a round, and not one round more
    assert CostEntry.objects.filter(run=run).count() == 12
    last = Checkpoint.objects.filter(run=run).order_by("-seq", "-attempt").first()
    assert (last.seq, last.status) == (13, "error")


def test_a_small_budget_stops_the_loop_before_the_step_limit_and_is_never_overspent(
    make_agent, model, settings
):
    settings.AIOS_RUN_MAX_STEPS = 40
    ModelPrice.objects.create(
        model="qwen-plus", input_per_million=Decimal("2"), output_per_million=Decimal("6")
    )
    # Each round costs 50 * 2/1M + 1000 * 6/1M = 0.0061; before it, the gateway holds the
    # worst case (about 0.0063: the prompt's bytes and 1024 tokens out). Under a cap of 0.02
    # the fourth round would cross it: three are paid for, then the run waits.
    model.script(
        *[Reply("more", usage={"prompt_tokens": 50, "completion_tokens": 1000}) for _ in range(60)]
    )
    cap = Decimal("0.02")
    agent = make_agent("demo.loop", daily_budget=cap)

    run = drive(run_start(agent=agent, input=LOOP)[0])

    assert run.status == "waiting" and run.waiting_for["kind"] == "budget"
    assert run.waiting_for["question"].startswith("Budget reached: the agent daily budget")
    assert len(model.requests) == 3
    counter = BudgetCounter.objects.get(agent=agent, period="day")
    spent = sum(entry.cost for entry in CostEntry.objects.filter(run=run))
    assert counter.spent == spent == 3 * Decimal("0.0061")
    assert counter.spent <= cap and counter.reserved == 0

    # More budget lets it go on, until the step limit stops it all the same.
    agent_update(agent=agent, daily_budget=Decimal("10"), actor=SETUP)
    run = drive(run)

    assert run.status == "failed" and run.error.startswith("step limit reached: 40 steps")
    assert len(model.requests) == 40  # the round that waited was paid for once, after
