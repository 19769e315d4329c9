"""The models API and pages: providers (keys never shown), prices, the workspace's tier
policy, intents; who may change them; and what the Agents, Models and Costs pages show."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from agents.models import BudgetCounter, CostEntry, ModelPrice, Provider
from aios_site.accounts.services import token_create

pytestmark = pytest.mark.django_db

QWEN = {
    "name": "qwen",
    "base_url": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
    "api_key": "sk-dashscope-abcdef987654",
    "model_small": "qwen-plus",
    "model_large": "qwen-max",
    "prices": [{"model": "qwen-max", "input_per_million": "1.6", "output_per_million": "6.4"}],
}


def bearer(user) -> dict:
    raw = token_create(membership=user.memberships.get(), name="t")[1]
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def put(client, path, body, user):
    return client.put(path, body, content_type="application/json", **bearer(user))


def test_an_owner_adds_a_provider_whose_key_is_never_shown_again(client, owner, viewer):
    created = put(client, "/api/v1/providers/qwen", QWEN, owner)

    assert created.status_code == 200
    assert created.json() == {
        "name": "qwen",
        "base_url": QWEN["base_url"],
        "model_small": "qwen-plus",
        "model_large": "qwen-max",
        "is_default": False,
        "max_concurrency": 16,  # a hosted API, by default
        "endpoint": {
            "state": "up",
            "since": None,
            "last_error": "",
            "latency_ms": None,
            "in_flight": 0,
            "waiting": 0,
            "concurrency": 16,
        },
        "api_key": "…7654",
    }
    listed = client.get("/api/v1/providers", **bearer(viewer)).json()
    assert listed == [created.json()]
    price = ModelPrice.objects.get(model="qwen-max")
    assert (price.workspace.slug, price.output_per_million) == ("alice", Decimal("6.4"))


def test_saving_a_provider_without_a_key_keeps_the_stored_one(client, owner):
    put(client, "/api/v1/providers/qwen", QWEN, owner)

    put(
        client,
        "/api/v1/providers/qwen",
        {**QWEN, "api_key": None, "model_small": "qwen-turbo"},
        owner,
    )

    provider = Provider.objects.get()
    assert (provider.api_key, provider.model_small) == (QWEN["api_key"], "qwen-turbo")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({**QWEN, "base_url": "ftp://files.example"}, 422),
        ({**QWEN, "name": "Not A Slug"}, 422),
        ({**QWEN, "name": "other"}, 400),
        ({**QWEN, "prices": [{"model": "x", "input_per_million": "-1"}]}, 422),
    ],
    ids=["scheme", "name", "path-mismatch", "negative-price"],
)
def test_a_bad_provider_is_refused_with_a_detail_and_nothing_is_stored(client, owner, body, status):
    response = put(client, "/api/v1/providers/qwen", body, owner)

    assert response.status_code == status and "detail" in response.json()
    assert not Provider.objects.exists()


def test_operators_and_viewers_cannot_change_models_and_outsiders_see_nothing(
    client, operator, viewer, outsider, owner
):
    put(client, "/api/v1/providers/qwen", QWEN, owner)
    for user in (operator, viewer):
        assert put(client, "/api/v1/providers/qwen", QWEN, user).status_code == 403
        assert put(client, "/api/v1/model-policy", {"policy": {}}, user).status_code == 403
        assert (
            put(
                client,
                "/api/v1/prices",
                {"model": "m", "input_per_million": 1, "output_per_million": 1},
                user,
            ).status_code
            == 403
        )
    assert client.delete("/api/v1/providers/qwen", **bearer(viewer)).status_code == 403
    # An outsider's token is for another workspace: it lists that one's (none) and cannot
    # reach this one's provider by name.
    assert client.get("/api/v1/providers", **bearer(outsider)).json() == []
    assert client.delete("/api/v1/providers/qwen", **bearer(outsider)).status_code == 404
    assert Provider.objects.count() == 1


def test_the_workspace_policy_is_validated_and_shows_what_serves_each_capability(
    client, owner, settings
):
    settings.AIOS_LLM_BASE_URL = ""
    bad = put(client, "/api/v1/model-policy", {"policy": {"plan": {"tier": "template"}}}, owner)
    good = put(client, "/api/v1/model-policy", {"policy": {"draft": {"tier": "template"}}}, owner)

    assert bad.status_code == 400 and "cannot serve it" in bad.json()["detail"]
    assert good.status_code == 200
    routes = {r["capability"]: r for r in good.json()["routes"]}
    assert routes["draft"]["tier"] == "template" and routes["draft"]["ready"]
    assert routes["embed"]["model"] == "all-MiniLM-L6-v2"
    assert routes["plan"] == {
        **routes["plan"],
        "ready": False,
        "note": "no model configured for plan",
    }


def test_operators_seed_intents_and_everyone_sees_the_counts(client, operator, viewer):
    assert client.post("/api/v1/intents/seed", **bearer(viewer)).status_code == 403

    seeded = client.post("/api/v1/intents/seed", **bearer(operator))

    # Bitext's 27 intents, and product questions
    assert seeded.status_code == 200 and len(seeded.json()) == 28
    # 20 from Bitext and 14 of ours in Spanish, French and German.
    assert {"intent": "track_order", "examples": 34} in seeded.json()
    assert client.get("/api/v1/intents", **bearer(viewer)).json() == seeded.json()


def test_the_agents_page_shows_each_agents_routes_and_spend_against_its_caps(
    client, owner, make_agent, workspace, settings
):
    settings.AIOS_LLM_BASE_URL = ""
    agent = make_agent("demo.model_call", daily_budget=Decimal("2"))
    BudgetCounter.objects.create(
        workspace=workspace,
        agent=agent,
        period="day",
        period_start=timezone.localdate(),
        spent=Decimal("1.5"),
    )
    client.force_login(owner)

    page = client.get("/w/alice/agents/").content.decode()

    assert "$1.50 of $2.00" in page and 'style="width: 75.0%"' in page
    assert "no model configured for plan" in page
    assert "no remote model: falls back to template; only requests that have a template" in page
    assert "Budgets, wording and models" in page


def test_an_owner_sets_an_agents_budget_and_policy_from_the_page(client, owner, make_agent):
    agent = make_agent("demo.model_call")
    client.force_login(owner)

    saved = client.post(
        f"/w/alice/agents/{agent.slug}/settings/",
        {"model_policy": '{"draft": {"tier": "template"}}', "daily_budget": "3.5"},
    )
    refused = client.post(
        f"/w/alice/agents/{agent.slug}/settings/",
        {"model_policy": "{}", "daily_budget": "NaN"},
    )

    agent.refresh_from_db()
    assert saved.status_code == refused.status_code == 302
    assert agent.model_policy == {"draft": {"tier": "template"}}
    assert agent.daily_budget == Decimal("3.5")


def test_the_costs_page_sums_the_ledger_per_agent_model_and_tier(
    client, viewer, make_agent, workspace
):
    agent = make_agent("demo.model_call")
    for model, tier, cost in (("qwen-max", "remote", "0.25"), ("lingua", "local", "0")):
        CostEntry.objects.create(
            workspace=workspace, agent=agent, model=model, tier=tier, cost=Decimal(cost)
        )
    client.force_login(viewer)

    page = client.get("/w/alice/costs/").content.decode()

    assert "2 model calls costing <strong>$0.25</strong>" in page
    assert "<td>qwen-max</td>" in page and "<td>remote</td>" in page


def test_the_models_page_tells_a_viewer_what_is_configured_without_forms(client, viewer):
    client.force_login(viewer)

    page = client.get("/w/alice/models/").content.decode()

    assert "AIOS_LLM_BASE_URL" in page or "(settings)" in page
    assert 'name="api_key"' not in page and "Save policy" not in page


def test_staff_see_providers_and_intent_examples_in_the_admin_without_the_key(
    admin_client, workspace
):
    from agents.services import models as model_services

    model_services.provider_save(
        workspace=workspace, name="qwen", base_url="https://x.example/v1", api_key="sk-hidden-42"
    )
    model_services.intent_examples_add(
        workspace=workspace, examples=[("where is my parcel", "track_order")], source="test"
    )
    provider = Provider.objects.get()

    listed = admin_client.get("/admin/agents/provider/").content.decode()
    change = admin_client.get(f"/admin/agents/provider/{provider.pk}/change/").content.decode()
    examples = admin_client.get("/admin/agents/intentexample/")

    assert "qwen" in listed and "sk-hidden-42" not in change
    assert provider.api_key_encrypted not in change
    assert examples.status_code == 200 and "where is my parcel" in examples.content.decode()


def test_an_owner_sets_the_webhook_topics_that_start_an_agent(client, owner, make_agent):
    agent = make_agent("demo.noop")
    client.force_login(owner)
    url = f"/w/alice/agents/{agent.slug}/settings/"

    client.post(url, {"model_policy": "{}", "webhook_topics": "orders/create, Carts/Update"})
    agent.refresh_from_db()
    saved = list(agent.webhook_topics)
    refused = client.post(
        url, {"model_policy": "{}", "webhook_topics": "orders create!"}, follow=True
    )
    agent.refresh_from_db()

    assert saved == ["carts/update", "orders/create"]
    assert agent.webhook_topics == saved  # the refused form changed nothing
    assert "is not a webhook topic" in refused.content.decode()
    assert "<code>carts/update</code>, <code>orders/create</code>" in refused.content.decode()


def test_an_owner_sets_how_many_requests_a_provider_answers_at_once(client, owner):
    client.force_login(owner)

    client.post("/w/alice/models/provider/", {**QWEN, "prices": "", "max_concurrency": "2"})
    refused = client.post(
        "/w/alice/models/provider/",
        {**QWEN, "prices": "", "max_concurrency": "many"},
        follow=True,
    )

    assert Provider.objects.get(name="qwen").max_concurrency == 2
    assert "whole number from 1 to 1000" in refused.content.decode()
    page = client.get("/w/alice/models/").content.decode()
    assert "0 of 2 at once" in page


def test_the_models_page_says_since_when_an_endpoint_is_unreachable_and_that_runs_wait(
    client, owner, fake_openai, settings
):
    from agents.llm import providers, remote

    settings.AIOS_LLM_BREAKER_FAILURES = 1
    fake_openai.down = True
    with pytest.raises(remote.TransientError):
        remote.complete(
            providers.settings_endpoint(),
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=5,
        )
    client.force_login(owner)

    page = client.get("/w/alice/models/").content.decode()

    assert "unreachable</span> since" in page
    assert "runs that need it wait, and resume by themselves" in page
