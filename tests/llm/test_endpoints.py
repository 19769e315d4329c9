"""A model endpoint under load and outage: its concurrency is shared by every caller, a run
waits out an endpoint that is down instead of failing, and every call the provider answered
is in the ledger. Through the real `openai` SDK against the local OpenAI-compatible server,
with the shared state in the session's real Valkey."""

from __future__ import annotations

import threading
import time

import pytest

from agents.llm import endpoints, remote
from agents.llm.endpoints import EndpointUnavailable
from agents.models import CostEntry, Run
from agents.services import run_advance, run_start
from aios_site.core.errors import TransientError
from tests.agents.conftest import drive
from tests.fakes.openai_server import Reply
from tests.helpers import at_once

pytestmark = pytest.mark.django_db


def _endpoint(fake, *, concurrency: int = 1, timeout: float = 5.0) -> remote.Endpoint:
    return remote.Endpoint(
        name="box",
        base_url=fake.base_url,
        api_key="",
        models={"small": "qwen-plus"},
        timeout=timeout,
        allow_private=True,
        concurrency=concurrency,
    )


def _call(endpoint) -> dict:
    return remote.complete(
        endpoint, model="qwen-plus", messages=[{"role": "user", "content": "hi"}], max_tokens=5
    )


@pytest.mark.parametrize("concurrency", [1, 2])
def test_an_endpoint_is_never_sent_more_requests_at_once_than_it_serves(fake_openai, concurrency):
    fake_openai.script(*[Reply(content=f"answer {i}", delay=0.3) for i in range(4)])
    endpoint = _endpoint(fake_openai, concurrency=concurrency)

    results = at_once([lambda: _call(endpoint)] * 4)

    assert sorted(r["content"] for r in results) == [f"answer {i}" for i in range(4)]
    assert fake_openai.max_in_flight == concurrency  # the others waited their turn here
    assert endpoints.status(endpoint)["in_flight"] == 0  # every slot was given back


def test_a_server_on_a_private_address_serves_one_at_a_time_and_a_hosted_api_many():
    assert endpoints.default_concurrency("http://127.0.0.1:8080/v1") == 1
    assert endpoints.default_concurrency("http://192.168.1.20:11434/v1") == 1
    assert endpoints.default_concurrency("https://api.openai.com/v1") == 16


def test_a_call_that_gets_no_turn_in_time_fails_as_transient_and_never_reaches_the_server(
    fake_openai, settings
):
    settings.AIOS_LLM_QUEUE_SECONDS = 0.3
    fake_openai.script(Reply(content="slow", delay=1.5), Reply(content="never sent"))
    endpoint = _endpoint(fake_openai)

    holder = threading.Thread(target=_call, args=(endpoint,))
    holder.start()
    time.sleep(0.2)
    with pytest.raises(TransientError, match="busy: no turn within"):
        _call(endpoint)
    holder.join()

    assert [r["messages"][-1]["content"] for r in fake_openai.requests].count("hi") == 1
    assert "never sent" in [r.content for r in fake_openai._script]


def test_a_request_that_times_out_is_cancelled_at_the_server_and_gives_its_turn_back(
    fake_openai,
):
    fake_openai.script(Reply(content="too late", delay=5.0), Reply(content="next"))
    endpoint = _endpoint(fake_openai, timeout=0.5)

    with pytest.raises(TransientError, match="no answer"):
        _call(endpoint)
    assert _call(endpoint)["content"] == "next"  # its slot was given back at once

    deadline = time.monotonic() + 2
    while fake_openai.cancelled == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_openai.cancelled == 1  # the server stopped: the client hung up


def test_after_repeated_connection_failures_no_call_goes_out_until_a_probe_is_due(
    fake_openai, settings
):
    settings.AIOS_LLM_BREAKER_FAILURES = 3
    settings.AIOS_LLM_BREAKER_SECONDS = 0.4
    endpoint = _endpoint(fake_openai)
    fake_openai.down = True

    for _ in range(2):
        with pytest.raises(TransientError) as failed:
            _call(endpoint)
        assert not isinstance(failed.value, EndpointUnavailable)
    with pytest.raises(EndpointUnavailable):
        _call(endpoint)  # the third failure opens the breaker: its caller waits
    with pytest.raises(EndpointUnavailable, match=r"unreachable since .* UTC") as waiting:
        _call(endpoint)

    assert fake_openai.refused == 3  # the fourth call never left
    assert 0 < waiting.value.retry_after <= 1.0
    assert endpoints.status(endpoint)["state"] == "unreachable"
    time.sleep(0.45)
    fake_openai.down = False
    fake_openai.script(Reply(content="back"))
    assert _call(endpoint)["content"] == "back"  # the probe, which closes the breaker
    assert endpoints.status(endpoint)["state"] == "up"
    assert endpoints.status(endpoint)["latency_ms"] > 0


def test_a_failed_probe_keeps_the_endpoint_closed_for_longer(fake_openai, settings):
    settings.AIOS_LLM_BREAKER_FAILURES = 2
    settings.AIOS_LLM_BREAKER_SECONDS = 0.3
    endpoint = _endpoint(fake_openai)
    fake_openai.down = True
    for _ in range(2):
        with pytest.raises(TransientError):
            _call(endpoint)
    time.sleep(0.35)

    with pytest.raises(EndpointUnavailable):
        _call(endpoint)  # the probe goes out, and fails: the same outage, still waiting
    with pytest.raises(EndpointUnavailable) as waiting:
        _call(endpoint)

    assert fake_openai.refused == 3
    assert waiting.value.retry_after > 0.45  # the interval doubled


def _advance_a_few_times(run: Run, times: int) -> Run:
    for _ in range(times):
        Run.objects.filter(pk=run.pk).update(not_before=None)
        run_advance(run_id=run.pk)
    run.refresh_from_db()
    return run


def test_a_run_whose_model_endpoint_is_down_waits_and_resumes_by_itself_when_it_is_back(
    make_agent, fake_openai, settings
):
    settings.AIOS_LLM_BREAKER_FAILURES = 2
    settings.AIOS_LLM_BREAKER_SECONDS = 0.2
    fake_openai.down = True
    run, _ = run_start(agent=make_agent("demo.ask_model"), input={"question": "q"})

    run = _advance_a_few_times(run, 8)  # far more slices than the step has attempts

    assert run.status == "queued", run.error
    assert "unreachable since" in run.error and "resumes by itself" in run.error
    assert run.not_before is not None
    fake_openai.down = False
    fake_openai.script(Reply(content="done"))
    time.sleep(1.0)  # past the probe interval, however often it doubled
    run = drive(run)
    assert (run.status, run.outcome["answer"], run.error) == ("succeeded", "done", "")
    statuses = list(run.checkpoints.values_list("status", flat=True))
    # One failed attempt before the breaker opened; then it waited, and the probe answered.
    assert statuses.count("error") == 1 and "waiting" in statuses and statuses[-1] == "ok"


def test_a_step_error_is_cleared_from_the_run_once_a_later_attempt_succeeds(
    make_agent, fake_openai
):
    fake_openai.script(Reply(content="late", delay=1.5), Reply(content="done"))

    run = drive(run_start(agent=make_agent("demo.ask_model"), input={"question": "q"})[0])

    assert (run.status, run.error) == ("succeeded", "")
    assert "no answer" in run.checkpoints.get(attempt=1).error  # the history keeps it


@pytest.mark.parametrize("status", [500, 429, 400])
def test_a_call_the_provider_answered_with_an_error_is_in_the_ledger_at_no_cost(
    make_agent, fake_openai, status
):
    fake_openai.script(Reply(status=status), Reply(content="done"))

    drive(run_start(agent=make_agent("demo.ask_model"), input={"question": "q"})[0])

    failed = CostEntry.objects.order_by("pk").first()
    assert failed.cost == 0 and failed.note.startswith("failed: ")
    assert str(status) in failed.note
    assert CostEntry.objects.count() == (1 if status == 400 else 2)  # a 400 is not retried
