"""Budgets hold whatever the model server does: repairs and retries are reserved, billed
failures are charged, a dead worker's reservation is reclaimed, an unpriced paid model is
refused, and the response cache never crosses workspaces (issue 17, points 8-11 and 15).

Every call goes through the real `openai` SDK to the local OpenAI-compatible test server."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from agents.llm import budgets
from agents.models import BudgetCounter, CostEntry, JournalEntry, ModelPrice, Run
from agents.pipelines import Pipeline, PipelineInput, finish, register, step
from agents.services import agent_create, run_start
from aios_site.core.errors import TransientError
from tests.agents.conftest import drive
from tests.fakes.openai_server import Reply

pytestmark = pytest.mark.django_db

QUESTION = "Which intent is this"  # 20 bytes: one call's worst case fits 4 decimals
# The worst case of one call of QUESTION at 2 / 6 per million tokens, with 1024 tokens out.
ONE_CALL = budgets.cost_of(
    ModelPrice(input_per_million=Decimal("2"), output_per_million=Decimal("6")),
    budgets.prompt_token_ceiling([{"role": "user", "content": QUESTION}]),
    1024,
)


@pytest.fixture(autouse=True)
def _fresh_caches():
    budgets._prices.clear()
    cache.clear()
    yield
    budgets._prices.clear()


@pytest.fixture
def priced(db):
    return ModelPrice.objects.create(
        model="qwen-plus", input_per_million=Decimal("2"), output_per_million=Decimal("6")
    )


def ask(agent, **run_input):
    return drive(run_start(agent=agent, input={"question": QUESTION, **run_input})[0])


def spent(agent) -> Decimal:
    return BudgetCounter.objects.get(agent=agent, period="day").spent


# -- 8. a repair is paid inside a reservation of its own ---------------------------------------


def test_a_json_repair_that_would_pass_the_cap_is_refused_and_spend_stays_within_it(
    make_agent, fake_openai, priced
):
    agent = make_agent("demo.ask_model", daily_budget=ONE_CALL)  # room for one call exactly
    billed = {"prompt_tokens": 10, "completion_tokens": 900}
    fake_openai.script(Reply(content="Sure! {intent: refund", usage=billed), Reply(content="{}"))

    run = ask(agent, json=True)

    assert run.status == "waiting" and run.waiting_for["kind"] == "budget"
    assert len(fake_openai.requests) == 1  # the repair was never sent
    [entry] = CostEntry.objects.all()
    assert entry.cost == Decimal("0.005420")  # the first call, as billed
    counter = BudgetCounter.objects.get(agent=agent, period="day")
    assert counter.spent == entry.cost <= ONE_CALL and counter.reserved == 0
    assert run.cost == entry.cost  # its answer was lost with the repair: the run is charged


def test_a_json_repair_within_the_cap_is_reserved_and_ledgered_as_a_call_of_its_own(
    make_agent, fake_openai, priced
):
    agent = make_agent("demo.ask_model", daily_budget=Decimal("1"))
    billed = {"prompt_tokens": 10, "completion_tokens": 900}
    fake_openai.script(
        Reply(content="Sure! {intent: refund", usage=billed),
        Reply(content='{"intent": "refund"}', usage=billed),
    )

    run = ask(agent, json=True)

    assert run.status == "succeeded" and run.outcome["answer"] == {"intent": "refund"}
    costs = list(CostEntry.objects.order_by("pk").values_list("cost", flat=True))
    assert costs == [Decimal("0.005420")] * 2
    assert spent(agent) == sum(costs) == Run.objects.get(pk=run.pk).cost
    assert BudgetCounter.objects.get(agent=agent, period="day").reserved == 0


@register
class AsksThenStumbles(Pipeline):
    """A step whose model call answers and which then fails once, as a step can after its
    call (a shop that times out, a worker killed before the commit)."""

    name = "test.asks_then_stumbles"

    class Input(PipelineInput):
        question: str

    @step(attempts=2, backoff=0.01, max_backoff=0.01)
    def start(self, ctx):
        answer = ctx.model("plan", messages=[{"role": "user", "content": ctx.input["question"]}])
        if ctx.checkpoint.attempt == 1:
            raise TransientError("the shop did not answer in time")
        return finish({"answer": answer["content"]})


def test_a_call_whose_step_failed_afterwards_is_in_the_runs_cost_once(
    make_agent, fake_openai, priced
):
    agent = make_agent("test.asks_then_stumbles", daily_budget=Decimal("1"))
    fake_openai.script(
        Reply(content="fine", usage={"prompt_tokens": 1000, "completion_tokens": 500})
    )

    run = ask(agent)

    attempts = [c.status for c in run.checkpoints.all()]
    assert run.status == "succeeded" and attempts == ["error", "ok"]
    assert len(fake_openai.requests) == 1  # the retry reused the journaled answer
    [entry] = CostEntry.objects.all()
    assert Run.objects.get(pk=run.pk).cost == entry.cost == spent(agent) == Decimal("0.005")


# -- 9. a failure the provider billed is charged ----------------------------------------------


def test_an_empty_answer_the_provider_billed_is_charged_with_a_ledger_row_and_in_the_runs_cost(
    make_agent, fake_openai, priced
):
    agent = make_agent("demo.ask_model", daily_budget=Decimal("1"))
    billed = {"prompt_tokens": 1000, "completion_tokens": 500}
    fake_openai.script(Reply(content="", usage=billed), Reply(content="done", usage=billed))

    run = ask(agent)

    assert run.status == "succeeded"
    empty, answered = CostEntry.objects.order_by("pk")
    assert (empty.prompt_tokens, empty.completion_tokens, empty.cost) == (
        1000,
        500,
        Decimal("0.005"),
    )
    assert empty.note == "the model returned an empty answer" and not empty.estimated
    assert spent(agent) == empty.cost + answered.cost == Decimal("0.01")
    assert [c.status for c in run.checkpoints.all()] == ["error", "ok"]  # the step retried
    assert run.cost == empty.cost + answered.cost  # the failed call counts in the run's cost


def test_a_repair_that_stays_invalid_is_charged_for_both_calls(make_agent, fake_openai, priced):
    agent = make_agent("demo.ask_model", daily_budget=Decimal("1"))
    billed = {"prompt_tokens": 1000, "completion_tokens": 500}
    fake_openai.script(Reply(content="nope", usage=billed), Reply(content="[1, 2]", usage=billed))

    run = ask(agent, json=True)

    assert run.status == "failed" and "InvalidStructuredOutput" in run.error
    first, repair = CostEntry.objects.order_by("pk")
    assert first.cost == repair.cost == Decimal("0.005")
    assert "no valid JSON object after a repair" in repair.note
    assert spent(agent) == run.cost == Decimal("0.01")
    assert BudgetCounter.objects.get(agent=agent, period="day").reserved == 0


def test_a_timeout_after_the_server_took_the_request_is_charged_its_reservation_and_says_so(
    make_agent, fake_openai, priced
):
    agent = make_agent("demo.ask_model", daily_budget=Decimal("1"))
    fake_openai.script(Reply(content="late", delay=1.5), Reply(content="done"))  # timeout: 1 s

    run = ask(agent)

    assert run.status == "succeeded"
    timed_out, answered = CostEntry.objects.order_by("pk")
    assert timed_out.cost == ONE_CALL and timed_out.estimated
    assert timed_out.completion_tokens == 1024  # the bound the reservation held
    assert timed_out.note.startswith("no answer (APITimeoutError")
    assert timed_out.note.endswith("charged the reserved worst case")
    assert spent(agent) == ONE_CALL + answered.cost


def test_a_cut_stream_is_charged_its_reservation_and_says_so(make_agent, fake_openai, priced):
    agent = make_agent("demo.ask_model", daily_budget=Decimal("1"))
    fake_openai.script(Reply(content="one two three four", cut_stream=True), Reply(content="ok"))

    run = ask(agent, stream=True)

    assert run.status == "succeeded"
    cut, answered = CostEntry.objects.order_by("pk")
    assert cut.cost == ONE_CALL and cut.estimated and "stream" in cut.note
    assert spent(agent) == ONE_CALL + answered.cost


# -- 10. a dead worker's reservation is reclaimed ----------------------------------------------


def test_a_reservation_left_by_a_dead_worker_is_reclaimed_once_its_lease_runs_out(
    make_agent, fake_openai, priced
):
    from agents.models import BudgetReservation

    agent = make_agent("demo.ask_model", daily_budget=ONE_CALL)
    budgets.reserve(agent=agent, amount=ONE_CALL)  # a worker took it and died: no settle
    assert ask(agent).status == "waiting"  # while its lease lasts, the room is held
    Run.objects.all().delete()

    BudgetReservation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    run = ask(agent)

    assert run.status == "succeeded"
    counter = BudgetCounter.objects.get(agent=agent, period="day")
    assert counter.reserved == 0 and counter.spent == CostEntry.objects.get().cost
    assert not BudgetReservation.objects.exists()


def test_every_expired_reservation_is_released_from_every_cap_it_held(make_agent, workspace):
    from agents.models import BudgetReservation

    workspace.daily_budget = Decimal("1")
    workspace.save()
    agent = make_agent("demo.ask_model", daily_budget=Decimal("1"))
    for _ in range(3):
        budgets.reserve(agent=agent, amount=Decimal("0.3"))  # three workers died holding these
    BudgetReservation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    budgets.reserve(agent=agent, amount=Decimal("0.9"))

    held = BudgetCounter.objects.filter(period="day").values_list("agent_id", "reserved")
    assert sorted(held, key=str) == sorted(
        [(agent.pk, Decimal("0.9")), (None, Decimal("0.9"))], key=str
    )
    assert BudgetReservation.objects.count() == 1


def test_a_call_that_outlived_its_lease_settles_without_releasing_its_room_twice(
    make_agent, priced
):
    from agents.models import BudgetReservation

    agent = make_agent("demo.ask_model", daily_budget=Decimal("1"))
    slow = budgets.reserve(agent=agent, amount=Decimal("0.4"))
    BudgetReservation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    other = budgets.reserve(agent=agent, amount=Decimal("0.4"))  # reclaims the slow one's

    budgets.settle(slow, Decimal("0.3"))  # the slow call ends after all

    counter = BudgetCounter.objects.get(agent=agent, period="day")
    assert (counter.spent, counter.reserved) == (Decimal("0.3"), Decimal("0.4"))
    budgets.settle(other, Decimal("0.4"))
    counter.refresh_from_db()
    assert (counter.spent, counter.reserved) == (Decimal("0.7"), Decimal("0"))


# -- 11. an unpriced paid model is not free ----------------------------------------------------


def test_a_paid_model_with_no_price_makes_the_run_wait_saying_so(
    make_agent, fake_openai, workspace
):
    from agents.services.models import price_set

    ModelPrice.objects.all().delete()
    run = ask(make_agent("demo.ask_model", daily_budget=Decimal("1")))

    assert run.status == "waiting" and run.waiting_for["kind"] == "model"
    assert "no price for model qwen-plus" in run.waiting_for["question"]
    assert fake_openai.requests == [] and not CostEntry.objects.exists()

    price_set(
        workspace=workspace,
        model="qwen-plus",
        input_per_million=Decimal("2"),
        output_per_million=Decimal("6"),
    )  # setting the price resumes the run

    assert drive(run).status == "succeeded" and CostEntry.objects.get().cost > 0


def test_a_workspace_default_price_prices_a_model_without_its_own(
    make_agent, fake_openai, workspace
):
    ModelPrice.objects.all().delete()
    ModelPrice.objects.create(
        workspace=workspace,
        model=budgets.ANY_MODEL,
        input_per_million=Decimal("1"),
        output_per_million=Decimal("1"),
    )
    fake_openai.script(Reply(content="ok", usage={"prompt_tokens": 1000, "completion_tokens": 0}))

    run = ask(make_agent("demo.ask_model"))

    assert run.status == "succeeded" and CostEntry.objects.get().cost == Decimal("0.001")


def test_the_models_page_shows_that_a_budget_cannot_hold_for_an_unpriced_model(
    owner_client, fake_openai
):
    ModelPrice.objects.all().delete()

    page = owner_client.get("/w/alice/models/").content.decode()

    assert "a budget cannot hold: no price for model qwen-plus" in page
    assert "a budget cannot hold: no price for model qwen-max" in page


def test_a_local_model_stays_free_without_a_price(make_agent, workspace):
    from agents.services.models import intent_examples_add

    ModelPrice.objects.all().delete()
    intent_examples_add(
        workspace=workspace,
        examples=[("where is my parcel", "track_order"), ("I want my money back", "refund")],
        source="test",
    )
    agent = make_agent("demo.model_call")

    run = drive(
        run_start(agent=agent, input={"capability": "classify", "request": {"texts": ["refund"]}})[
            0
        ]
    )

    assert run.status == "succeeded" and run.outcome["tier"] == "local"
    assert CostEntry.objects.get().cost == 0


# -- 15. the response cache never crosses workspaces -------------------------------------------


def test_one_workspace_never_receives_another_workspaces_cached_answer(
    make_agent, fake_openai, priced, other_workspace
):
    alice = make_agent("demo.ask_model")
    bob = agent_create(workspace=other_workspace, slug="ask", name="ask", pipeline="demo.ask_model")
    fake_openai.script(Reply(content="Alice's answer"), Reply(content="Bob's answer"))

    first = ask(alice, cache=True)
    second = ask(bob, cache=True)

    assert first.outcome["answer"] == "Alice's answer"
    assert second.outcome["answer"] == "Bob's answer"
    assert len(fake_openai.requests) == 2  # Bob's call reached the model
    bobs = JournalEntry.objects.get(run=second)
    assert "cache_hit" not in bobs.response
    assert not CostEntry.objects.get(run=second).cache_hit
    assert ask(bob, cache=True).outcome["answer"] == "Bob's answer"  # his own repeat is cached
    assert len(fake_openai.requests) == 2
