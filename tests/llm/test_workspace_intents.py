"""A workspace's intents live in pgvector as labelled examples; the local tier classifies by
their centroids. Seeded from the shipped Bitext subset, evaluated on other Bitext rows."""

from __future__ import annotations

from collections import defaultdict

import pytest

from agents.llm import intents
from agents.models import IntentExample
from agents.services import models as model_services
from agents.services import run_start
from agents.tasks import intent_examples_seed as intent_examples_seed_task
from tests.agents.conftest import drive
from tests.helpers import bitext_rows

pytestmark = pytest.mark.django_db


def classify(agent, texts):
    run = drive(
        run_start(agent=agent, input={"capability": "classify", "request": {"texts": texts}})[0]
    )
    return run


def held_out(per_intent: int = 6) -> list[tuple[str, str]]:
    """Rows the seed file does not hold (it took every 5th from the first; these start at 2)."""
    by_intent: dict[str, list[str]] = defaultdict(list)
    for row in bitext_rows():
        by_intent[row["intent"]].append(row["instruction"])
    return [(t, i) for i, texts in by_intent.items() for t in texts[2::5][:per_intent]]


def test_the_seed_gives_28_intents_once_and_classifies_held_out_messages(make_agent, workspace):
    assert model_services.intent_examples_seed(workspace=workspace) == len(intents.seed_rows())
    assert model_services.intent_examples_seed(workspace=workspace) == 0
    intent_examples_seed_task(workspace.pk)  # what `aios up --demo` enqueues: a no-op now
    assert IntentExample.objects.filter(workspace=workspace).count() == len(intents.seed_rows())
    rows = held_out()
    seeded = {text for text, _ in intents.seed_rows()}
    assert not seeded & {text for text, _ in rows}

    run = classify(make_agent("demo.model_call"), [text for text, _ in rows])

    results = run.outcome["results"]
    accuracy = sum(r["intent"] == i for r, (_, i) in zip(results, rows, strict=True)) / len(rows)
    print(f"intent accuracy through the gateway on {len(rows)} held-out messages: {accuracy:.1%}")
    assert run.outcome["tier"] == "local" and len(results) == len(rows)
    assert accuracy >= 0.75
    assert (
        IntentExample.objects.filter(workspace=workspace).values("intent").distinct().count() == 28
    )


def test_a_workspace_without_examples_waits_instead_of_guessing(make_agent, workspace):
    run = classify(make_agent("demo.model_call"), ["where is my parcel"])

    assert run.status == "waiting"
    assert "no intent examples" in run.waiting_for["question"]


def test_another_workspaces_examples_are_never_used(make_agent, workspace, other_workspace):
    model_services.intent_examples_add(
        workspace=other_workspace,
        examples=[("where is my parcel", "track_order"), ("refund me now", "get_refund")],
        source="test",
    )

    run = classify(make_agent("demo.model_call"), ["where is my parcel"])

    assert run.status == "waiting"


def test_new_examples_change_the_centroids_at_the_next_call(make_agent, workspace):
    agent = make_agent("demo.model_call")
    model_services.intent_examples_add(
        workspace=workspace,
        examples=[("where is my parcel", "track_order"), ("I want a refund", "get_refund")],
        source="test",
    )
    before = classify(agent, ["Can I pay with a gift card?"]).outcome["results"][0]

    model_services.intent_examples_add(
        workspace=workspace,
        examples=[("do you accept gift cards as payment", "check_payment_methods")],
        source="test",
    )
    after = classify(agent, ["Can I pay with a gift card?"]).outcome["results"][0]

    assert before["intent"] != "check_payment_methods"
    assert after["intent"] == "check_payment_methods"


@pytest.mark.django_db(transaction=True)
def test_a_seed_in_progress_does_not_hold_back_what_is_written_for_the_workspace(
    workspace, make_agent, monkeypatch
):
    """Embedding the shipped examples takes a while; meanwhile a run (any row that refers to
    the workspace) still commits. A plain FOR UPDATE on the workspace made its foreign-key
    check wait for the whole seed: webhook deliveries hung until their senders gave up."""
    import threading

    from django.db import connection, transaction

    from agents.llm import local

    agent = make_agent("demo.echo", slug="echo")
    embedding, go_on = threading.Event(), threading.Event()
    embed = local.embed

    def slow_embed(texts):
        embedding.set()
        go_on.wait(20)
        return embed(texts)

    monkeypatch.setattr(local, "embed", slow_embed)

    def seed():
        try:
            model_services.intent_examples_seed(workspace=workspace)
        finally:
            connection.close()

    seeding = threading.Thread(target=seed)
    seeding.start()
    try:
        assert embedding.wait(20)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '3s'")  # the seed would hold it far longer
            run, _ = run_start(agent=agent, input={"key": "during-the-seed"})
    finally:
        go_on.set()
        seeding.join(60)

    assert run.pk is not None
    assert IntentExample.objects.filter(workspace=workspace).count() == len(intents.seed_rows())
