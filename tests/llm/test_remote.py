"""The remote tier through the real `openai` SDK against a local OpenAI-compatible server."""

from __future__ import annotations

import pytest

from agents.models import JournalEntry
from agents.services import run_start
from tests.agents.conftest import drive
from tests.fakes.openai_server import Reply

pytestmark = pytest.mark.django_db


def ask(make_agent, **run_input):
    return drive(run_start(agent=make_agent("demo.ask_model"), input=run_input)[0])


def test_a_model_call_is_journaled_with_its_usage(make_agent, fake_openai):
    fake_openai.script(Reply(content="Bonjour !"))

    run = ask(make_agent, question="Say hello in French")

    assert run.outcome == {"answer": "Bonjour !", "model": "qwen-plus", "tier": "remote"}
    [entry] = JournalEntry.objects.filter(run=run)
    assert (entry.kind, entry.name, entry.ok) == ("model", "plan", True)
    assert entry.response["provider"] == "default"
    assert entry.usage == {"prompt_tokens": 4, "completion_tokens": 2}
    [request] = fake_openai.requests
    assert request["model"] == "qwen-plus"
    assert request["messages"] == [{"role": "user", "content": "Say hello in French"}]


def test_missing_usage_is_estimated_and_marked(make_agent, fake_openai):
    fake_openai.script(Reply(content="x" * 40, usage=None))

    run = ask(make_agent, question="y" * 80)

    assert JournalEntry.objects.get(run=run).usage == {
        "prompt_tokens": 20,
        "completion_tokens": 10,
        "estimated": True,
    }


@pytest.mark.parametrize(
    "failure",
    [
        Reply(status=429, headers={"Retry-After": "0.3"}),
        Reply(status=503),
        Reply(content=""),
        Reply(content="late", delay=1.5),  # longer than the client's 1 s timeout
    ],
    ids=["rate-limited", "server-error", "empty-answer", "timeout"],
)
def test_transient_failures_are_retried_and_the_call_then_succeeds(
    make_agent, fake_openai, failure
):
    fake_openai.script(failure, Reply(content="done"))

    run = ask(make_agent, question="q")

    assert run.status == "succeeded" and run.outcome["answer"] == "done"
    attempts = list(run.checkpoints.values_list("attempt", "status"))
    assert attempts == [(1, "error"), (2, "ok")]
    assert "TransientError" in run.checkpoints.get(attempt=1).error


def test_a_rate_limit_is_retried_no_sooner_than_retry_after(make_agent, fake_openai):
    fake_openai.script(Reply(status=429, headers={"Retry-After": "2"}), Reply(content="ok"))

    run, _ = run_start(agent=make_agent("demo.ask_model"), input={"question": "q"})
    from agents.services import run_advance

    run_advance(run_id=run.pk)
    run.refresh_from_db()

    assert run.status == "queued"
    assert (run.not_before - run.checkpoints.get(attempt=1).finished_at).total_seconds() >= 1.9


def test_a_refused_request_fails_the_run_without_retrying(make_agent, fake_openai):
    fake_openai.script(Reply(status=400))

    run = ask(make_agent, question="q")

    assert run.status == "failed" and run.error.startswith("PermanentError: the model endpoint")
    assert len(fake_openai.requests) == 1


def test_json_output_is_validated_and_repaired_once(make_agent, fake_openai):
    fake_openai.script(
        Reply(content="Sure! {intent: refund"), Reply(content='{"intent": "refund"}')
    )

    run = ask(make_agent, question="classify", json=True)

    assert run.outcome["answer"] == {"intent": "refund"}
    first, repair = fake_openai.requests
    assert first["response_format"] == {"type": "json_object"}
    assert repair["messages"][-2] == {"role": "assistant", "content": "Sure! {intent: refund"}
    assert "not a valid JSON object" in repair["messages"][-1]["content"]


def test_json_that_stays_invalid_fails_the_run(make_agent, fake_openai):
    fake_openai.script(Reply(content="nope"), Reply(content="[1, 2]"))

    run = ask(make_agent, question="classify", json=True)

    assert run.status == "failed" and "InvalidStructuredOutput" in run.error


def test_with_no_endpoint_configured_the_run_waits_and_says_so(make_agent, settings):
    settings.AIOS_LLM_BASE_URL = ""

    run = ask(make_agent, question="q")

    assert run.status == "waiting" and run.waiting_for["kind"] == "model"
    assert run.waiting_for["question"].startswith("No model configured for plan: no remote")
    assert run.checkpoints.get().status == "waiting"


def test_a_streamed_answer_is_assembled_with_its_usage(make_agent, fake_openai):
    fake_openai.script(Reply(content="Your order ships on Monday."))

    run = ask(make_agent, question="When?", stream=True)

    assert run.outcome["answer"] == "Your order ships on Monday."
    [request] = fake_openai.requests
    assert request["stream"] is True and request["stream_options"] == {"include_usage": True}
    assert JournalEntry.objects.get(run=run).usage == {"prompt_tokens": 1, "completion_tokens": 5}


def test_a_stream_without_usage_is_estimated(make_agent, fake_openai):
    fake_openai.script(Reply(content="word " * 7 + "end", usage=None))

    run = ask(make_agent, question="q" * 8, stream=True)

    assert JournalEntry.objects.get(run=run).usage == {
        "prompt_tokens": 2,
        "completion_tokens": 10,
        "estimated": True,
    }


def test_a_stream_cut_off_midway_is_retried(make_agent, fake_openai):
    fake_openai.script(Reply(content="one two three four", cut_stream=True), Reply(content="whole"))

    run = ask(make_agent, question="q", stream=True)

    assert run.status == "succeeded" and run.outcome["answer"] == "whole"
    assert [c.status for c in run.checkpoints.all()] == ["error", "ok"]
