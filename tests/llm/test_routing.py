"""Tier policy and routing: which tier and provider serve a capability, and what happens when
none can. Runs are real (driven here); remote providers are local OpenAI-compatible servers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agents.llm import PolicyError, routing
from agents.models import CostEntry, JournalEntry, Provider
from agents.services import agent_update, run_start
from agents.services import models as model_services
from approvals.audit import SETUP
from tests.agents.conftest import drive
from tests.fakes.openai_server import FakeOpenAI, Reply

pytestmark = pytest.mark.django_db

QUESTION = [{"role": "user", "content": "Which colour suits a summer dress?"}]


def call(agent, capability, **request):
    return drive(run_start(agent=agent, input={"capability": capability, "request": request})[0])


@pytest.fixture
def second_server():
    server = FakeOpenAI()
    yield server
    server.close()


@pytest.mark.parametrize(
    ("policy", "complaint"),
    [
        ({"summarise": {"tier": "remote"}}, "unknown capability 'summarise'"),
        ({"embed": {"tier": "remote"}}, "embed: tier 'remote' cannot serve it"),
        ({"draft": {"tier": "remote", "role": "huge"}}, "draft: role must be one of"),
        ({"draft": {"tier": "remote", "temperature": 2}}, "draft: unknown field(s) temperature"),
        ({"draft": "remote"}, "draft: a route is an object"),
        (["draft"], "a tier policy is an object"),
    ],
)
def test_a_policy_that_cannot_be_applied_is_refused_with_the_reason(policy, complaint):
    with pytest.raises(PolicyError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        routing.policy_validate(policy)


def test_the_agents_route_overrides_the_workspaces_field_by_field():
    route = routing.route_for(
        capability="draft",
        agent_policy={"draft": {"provider": "qwen"}},
        workspace_policy={"draft": {"role": "small", "cache": True}},
    )

    assert route == routing.Route(tier="remote", role="small", provider="qwen", cache=True)


def test_a_bad_policy_in_the_api_is_a_400_and_changes_nothing(owner_client, make_agent):
    agent = make_agent("demo.model_call", model_policy={"draft": {"tier": "template"}})

    response = owner_client.patch(
        f"/api/v1/agents/{agent.slug}?workspace=alice",
        {"model_policy": {"plan": {"tier": "template"}}},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert "plan: tier 'template' cannot serve it" in response.json()["detail"]
    agent.refresh_from_db()
    assert agent.model_policy == {"draft": {"tier": "template"}}


def test_a_named_provider_gets_the_call_with_its_own_key(
    make_agent, workspace, fake_openai, second_server
):
    model_services.provider_save(
        workspace=workspace,
        name="qwen",
        base_url=second_server.base_url,
        api_key="sk-qwen-secret-1234",
        model_small="qwen-turbo",
    )
    agent = make_agent("demo.model_call", model_policy={"plan": {"provider": "qwen"}})

    run = call(agent, "plan", messages=QUESTION)

    assert (run.outcome["provider"], run.outcome["requested_model"]) == ("qwen", "qwen-turbo")
    assert [r["model"] for r in second_server.requests] == ["qwen-turbo"]
    assert second_server.headers[0]["authorization"] == "Bearer sk-qwen-secret-1234"
    assert fake_openai.requests == []


def test_a_providers_key_is_encrypted_at_rest(workspace):
    model_services.provider_save(
        workspace=workspace, name="qwen", base_url="https://x.example/v1", api_key="sk-plain-9876"
    )

    stored = Provider.objects.values_list("api_key_encrypted", flat=True).get()
    assert "sk-plain-9876" not in stored and stored.startswith("gAAAA")
    assert Provider.objects.get().api_key == "sk-plain-9876"


def test_a_workspaces_default_provider_replaces_the_settings_one(
    make_agent, workspace, fake_openai, second_server
):
    model_services.provider_save(
        workspace=workspace,
        name="own",
        base_url=second_server.base_url,
        model_small="mistral-small",
        is_default=True,
    )

    run = call(make_agent("demo.model_call"), "plan", messages=QUESTION)

    assert run.outcome["requested_model"] == "mistral-small"
    assert len(second_server.requests) == 1 and fake_openai.requests == []


def test_a_route_to_a_provider_that_does_not_exist_waits_and_says_which(make_agent, fake_openai):
    agent = make_agent("demo.model_call", model_policy={"plan": {"provider": "gone"}})

    run = call(agent, "plan", messages=QUESTION)

    assert run.status == "waiting"
    assert run.waiting_for["question"] == (
        "No model configured for plan: no provider named 'gone'; "
        "no local model (AIOS_LOCAL_LM_PATH)."
    )


def test_a_run_waiting_for_a_model_resumes_when_a_provider_is_added(
    make_agent, workspace, settings, second_server
):
    settings.AIOS_LLM_BASE_URL = ""
    run = call(make_agent("demo.model_call"), "plan", messages=QUESTION)
    assert run.status == "waiting" and run.waiting_for["capability"] == "plan"

    model_services.provider_save(
        workspace=workspace,
        name="own",
        base_url=second_server.base_url,
        model_small="llama3",
        is_default=True,
        prices={"llama3": {"input_per_million": Decimal(1), "output_per_million": Decimal(1)}},
    )
    run = drive(run)

    assert run.status == "succeeded" and run.outcome["requested_model"] == "llama3"
    assert list(run.checkpoints.values_list("status", flat=True)) == ["waiting", "ok"]


def test_changing_the_agents_policy_resumes_its_runs_waiting_for_a_model(
    make_agent, settings, fake_openai
):
    agent = make_agent("demo.model_call", model_policy={"plan": {"provider": "gone"}})
    run = call(agent, "plan", messages=QUESTION)
    assert run.status == "waiting"

    agent_update(agent=agent, model_policy={}, actor=SETUP)

    assert drive(run).status == "succeeded"


def test_local_analysis_is_ledgered_as_free_local_calls(make_agent):
    agent = make_agent("demo.model_call")

    embedded = call(agent, "embed", texts=["linen shirt", "cotton dress"])
    detected = call(agent, "detect_language", texts=["¿Dónde está mi pedido?"])

    assert embedded.outcome["tier"] == "local" and len(embedded.outcome["vectors"]) == 2
    assert len(embedded.outcome["vectors"][0]) == 384
    assert detected.outcome["results"][0]["language"] == "es"
    rows = list(CostEntry.objects.order_by("pk").values_list("model", "tier", "cost"))
    assert [(m, t, float(c)) for m, t, c in rows] == [
        ("all-MiniLM-L6-v2", "local", 0.0),
        ("lingua", "local", 0.0),
    ]


def test_a_step_that_proposes_never_gets_a_cached_answer(make_agent, fake_openai):
    fake_openai.script(Reply(content="first"), Reply(content="second"), Reply(content="third"))
    plain = make_agent("demo.model_call")
    proposing = make_agent("demo.model_call_proposing")

    cached = [call(plain, "plan", messages=QUESTION, cache=True) for _ in range(2)]
    proposed = [call(proposing, "plan", messages=QUESTION, cache=True) for _ in range(2)]

    assert [r.outcome["content"] for r in cached] == ["first", "first"]
    assert cached[1].outcome["cache_hit"] is True
    assert [r.outcome["content"] for r in proposed] == ["second", "third"]
    assert len(fake_openai.requests) == 3


def test_the_journal_names_the_capability_so_a_replay_ignores_later_policy_changes(
    make_agent, fake_openai, settings
):
    from agents.services import run_replay

    run = call(make_agent("demo.model_call"), "plan", messages=QUESTION)
    settings.AIOS_LLM_BASE_URL = ""  # the model is gone; the replay must not need it

    replay = drive(run_replay(run=run))

    assert JournalEntry.objects.get(run=run).name == "plan"
    assert replay.replay_verdict == "identical" and replay.outcome == run.outcome


def test_a_draft_routed_to_the_local_model_is_generated_here_and_ledgered(
    make_agent, settings, tmp_path
):
    from tests.llm.test_local_lm import _tiny_model

    _tiny_model(tmp_path)
    settings.AIOS_LOCAL_LM_PATH = str(tmp_path)
    agent = make_agent("demo.model_call", model_policy={"draft": {"tier": "local"}})

    run = call(agent, "draft", messages=QUESTION, max_tokens=6)

    assert run.status == "succeeded" and run.outcome["tier"] == "local"
    assert run.outcome["model"] == f"local:{tmp_path.name}"
    assert 0 < run.outcome["usage"]["completion_tokens"] <= 6
    entry = CostEntry.objects.get(run=run)
    assert (entry.tier, entry.cost, entry.completion_tokens) == (
        "local",
        0,
        run.outcome["usage"]["completion_tokens"],
    )


def test_with_no_remote_endpoint_a_plan_falls_back_to_the_local_model_and_says_so(
    make_agent, settings, tmp_path
):
    from tests.llm.test_local_lm import _tiny_model

    _tiny_model(tmp_path)
    settings.AIOS_LOCAL_LM_PATH = str(tmp_path)
    settings.AIOS_LLM_BASE_URL = ""

    run = call(make_agent("demo.model_call"), "plan", messages=QUESTION, max_tokens=4)

    assert run.outcome["tier"] == "local"
    assert run.outcome["fallback"] == {
        "from": "remote",
        "reasons": ["no remote endpoint (AIOS_LLM_BASE_URL, or a provider on the Models page)"],
    }


def test_a_streamed_answer_is_pushed_to_the_runs_page_as_it_arrives(make_agent, fake_openai):
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from aios_site.core.groups import run_group

    fake_openai.script(Reply(content="Linen <b>breathes</b> well in summer."))
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    run, _ = run_start(agent=make_agent("demo.ask_model"), input={"question": "q", "stream": True})
    async_to_sync(layer.group_add)(run_group(run.pk), channel)

    drive(run)
    message = async_to_sync(layer.receive)(channel)

    assert message["type"] == "run.streamed" and message["step"] == "start"
    assert message["text"].startswith("Linen")
    from agents.events import render_run_stream

    html = render_run_stream(step="start", text="Linen <b>breathes</b>")
    assert 'id="run-stream"' in html and "<b>" not in html and "&lt;b&gt;" in html


ORDER_REPLY = {
    "template": "reply.order_status",
    "context": {
        "shop_name": "Casa Lino",
        "order_name": "#1001",
        "status": "shipped",
        "carrier": "DHL",
    },
}


@pytest.mark.parametrize(
    ("language", "phrase"),
    [("es", "Se ha enviado con DHL"), ("de", "DHL"), ("fr", "DHL"), ("en", "DHL")],
)
def test_with_no_remote_endpoint_a_draft_with_a_template_is_answered_from_it(
    make_agent, settings, language, phrase
):
    settings.AIOS_LLM_BASE_URL = ""

    run = call(
        make_agent("demo.model_call"),
        "draft",
        messages=QUESTION,
        language=language,
        **ORDER_REPLY,
    )

    assert run.status == "succeeded"
    assert (run.outcome["tier"], run.outcome["language"]) == ("template", language)
    assert run.outcome["fallback"]["from"] == "remote"
    assert phrase in run.outcome["content"] and "#1001" in run.outcome["content"]
    assert CostEntry.objects.get(run=run).tier == "template"


def test_a_configured_remote_endpoint_is_preferred_to_the_template(make_agent, fake_openai):
    fake_openai.script(Reply(content="Your order #1001 is on its way with DHL."))

    run = call(make_agent("demo.model_call"), "draft", messages=QUESTION, **ORDER_REPLY)

    assert run.outcome["tier"] == "remote" and "fallback" not in run.outcome


def test_a_draft_without_a_template_or_a_model_waits_with_every_reason(make_agent, settings):
    settings.AIOS_LLM_BASE_URL = ""

    run = call(make_agent("demo.model_call"), "draft", messages=QUESTION)

    assert run.status == "waiting"
    assert run.waiting_for["question"] == (
        "No model configured for draft: no remote endpoint (AIOS_LLM_BASE_URL, or a provider "
        "on the Models page); no local model (AIOS_LOCAL_LM_PATH); no template for this request."
    )
