from __future__ import annotations

import pytest

from agents.models import Agent, Run
from agents.services import run_advance, run_answer, run_start
from aios_site.accounts.services import token_create

pytestmark = pytest.mark.django_db


def _bearer(user) -> dict:
    raw = token_create(membership=user.memberships.get(), name="t")[1]
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _post(client, path, body, auth):
    return client.post(path, body, content_type="application/json", **auth)


@pytest.fixture
def echo(make_agent):
    return make_agent("demo.echo", slug="echo")


def test_an_owner_creates_an_agent_and_everyone_in_the_workspace_sees_it(client, owner, viewer):
    response = _post(
        client,
        "/api/v1/agents",
        {"slug": "copy", "name": "Copywriter", "pipeline": "demo.noop", "priority": "bulk"},
        _bearer(owner),
    )

    assert response.status_code == 201
    assert response.json() == {
        "slug": "copy",
        "name": "Copywriter",
        "pipeline": "demo.noop",
        "enabled": True,
        "priority": "bulk",
        "model_policy": {},
        "prompt_versions": {},
        "daily_budget": None,
        "monthly_budget": None,
        "allowed_effectors": [],
        "webhook_topics": [],
    }
    assert [a["slug"] for a in client.get("/api/v1/agents", **_bearer(viewer)).json()] == ["copy"]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"slug": "x", "name": "X", "pipeline": "no.such"}, 400, "no pipeline named 'no.such'"),
        ({"slug": "Bad Slug!", "name": "X", "pipeline": "demo.noop"}, 422, None),
        (
            {"slug": "echo", "name": "X", "pipeline": "demo.noop"},
            409,
            "an agent 'echo' already exists",
        ),
    ],
)
def test_bad_agent_definitions_get_a_4xx_with_detail(client, owner, echo, body, status, detail):
    response = _post(client, "/api/v1/agents", body, _bearer(owner))

    assert response.status_code == status
    if detail:
        assert response.json() == {"detail": detail}


def test_only_an_owner_changes_agents(client, operator, owner, echo):
    assert (
        _post(
            client,
            "/api/v1/agents",
            {"slug": "x", "name": "X", "pipeline": "demo.noop"},
            _bearer(operator),
        ).status_code
        == 403
    )
    response = client.patch(
        "/api/v1/agents/echo", {"enabled": False}, content_type="application/json", **_bearer(owner)
    )
    assert response.json()["enabled"] is False
    assert client.delete("/api/v1/agents/echo", **_bearer(operator)).status_code == 403
    assert client.delete("/api/v1/agents/echo", **_bearer(owner)).status_code == 204
    assert not Agent.objects.exists()


def test_starting_a_run_twice_with_one_key_returns_the_same_run(client, operator, echo):
    body = {"agent": "echo", "input": {"text": "hi"}, "idempotency_key": "order-1001"}

    first = _post(client, "/api/v1/runs", body, _bearer(operator))
    again = _post(client, "/api/v1/runs", body, _bearer(operator))

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    run = first.json()
    assert (run["agent"], run["status"], run["current_step"], run["trigger"]) == (
        "echo",
        "queued",
        "start",
        "manual",
    )
    assert Run.objects.count() == 1


def test_a_viewer_cannot_start_runs(client, viewer, echo):
    response = _post(client, "/api/v1/runs", {"agent": "echo"}, _bearer(viewer))

    assert response.status_code == 403
    assert "operator" in response.json()["detail"]


def test_run_input_must_be_an_object(client, operator, echo):
    response = _post(client, "/api/v1/runs", {"agent": "echo", "input": [1, 2]}, _bearer(operator))

    assert response.status_code == 422


def test_the_run_list_filters_and_pages(client, viewer, echo, make_agent):
    noop = make_agent("demo.noop", slug="noop")
    for _ in range(3):
        run_start(agent=echo, input={})
    run_start(agent=noop, input={})

    page = client.get("/api/v1/runs?agent=echo&limit=2", **_bearer(viewer)).json()

    assert page["count"] == 3 and len(page["items"]) == 2
    assert {r["agent"] for r in page["items"]} == {"echo"}
    assert client.get("/api/v1/runs?status=succeeded", **_bearer(viewer)).json()["count"] == 0


def test_a_run_shows_its_checkpoints_and_journal(client, operator, echo):
    run, _ = run_start(agent=echo, input={"text": "hi"})
    run_advance(run_id=run.pk)

    detail = client.get(f"/api/v1/runs/{run.pk}", **_bearer(operator)).json()

    assert detail["status"] == "waiting"
    assert detail["waiting_for"]["question"] == "continue?"
    first, second = detail["checkpoints"]
    assert (first["seq"], first["step"], first["attempt"], first["status"]) == (1, "start", 1, "ok")
    assert [j["kind"] for j in first["journal"]] == ["clock", "random"]
    assert first["journal_summary"]["calls"] == 2
    assert first["transition"]["kind"] == "goto" and first["transition"]["target"] == "ask"
    assert second["transition"]["waiting_for"]["kind"] == "escalation"


def test_answering_and_conflicts(client, operator, echo):
    run, _ = run_start(agent=echo, input={})
    assert (
        _post(
            client, f"/api/v1/runs/{run.pk}/answer", {"answer": "yes"}, _bearer(operator)
        ).status_code
        == 409
    )  # not waiting yet
    run_advance(run_id=run.pk)

    response = _post(client, f"/api/v1/runs/{run.pk}/answer", {"answer": "yes"}, _bearer(operator))

    assert response.status_code == 200
    assert response.json()["status"] == "queued" and response.json()["state"]["answer"] == "yes"
    assert _post(client, f"/api/v1/runs/{run.pk}/answer", {}, _bearer(operator)).status_code == 422


def test_cancel_replay_and_fork_through_the_api(client, operator, echo):
    auth = _bearer(operator)
    run, _ = run_start(agent=echo, input={})
    assert _post(client, f"/api/v1/runs/{run.pk}/replay", {}, auth).status_code == 409
    run_advance(run_id=run.pk)
    run_answer(run=run, answer="yes")
    run_advance(run_id=run.pk)

    assert _post(client, f"/api/v1/runs/{run.pk}/cancel", {}, auth).status_code == 409
    replay = _post(client, f"/api/v1/runs/{run.pk}/replay", {}, auth)
    assert replay.status_code == 201
    assert (replay.json()["trigger"], replay.json()["parent"]) == ("replay", run.pk)
    fork = _post(
        client, f"/api/v1/runs/{run.pk}/fork", {"from_seq": 2, "state_patch": {"x": 1}}, auth
    )
    assert fork.status_code == 201
    assert (fork.json()["forked_from_seq"], fork.json()["state"]["x"]) == (2, 1)
    assert _post(client, f"/api/v1/runs/{run.pk}/fork", {"from_seq": 0}, auth).status_code == 422


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/runs/{run}"),
        ("post", "/api/v1/runs/{run}/cancel"),
        ("post", "/api/v1/runs/{run}/answer"),
        ("post", "/api/v1/runs/{run}/replay"),
        ("post", "/api/v1/runs/{run}/fork"),
        ("get", "/api/v1/agents/echo"),
        ("patch", "/api/v1/agents/echo"),
        ("delete", "/api/v1/agents/echo"),
    ],
)
def test_an_outsider_gets_404_for_another_workspaces_runs_and_agents(
    client, echo, outsider, method, path
):
    run, _ = run_start(agent=echo, input={})
    body = {"answer": "x", "from_seq": 1, "state_patch": {}, "enabled": False}

    response = getattr(client, method)(
        path.format(run=run.pk), body, content_type="application/json", **_bearer(outsider)
    )

    assert response.status_code == 404
    assert Run.objects.get(pk=run.pk).status == "queued"


def test_an_outsiders_lists_are_empty(client, echo, outsider):
    run_start(agent=echo, input={})

    assert client.get("/api/v1/runs", **_bearer(outsider)).json() == {"items": [], "count": 0}
    assert client.get("/api/v1/agents", **_bearer(outsider)).json() == []
    assert _post(client, "/api/v1/runs", {"agent": "echo"}, _bearer(outsider)).status_code == 404


def test_a_session_names_the_workspace_or_uses_the_one_open_in_the_ui(client, owner, echo):
    client.force_login(owner)

    assert client.get("/api/v1/runs").status_code == 400
    assert client.get("/api/v1/runs?workspace=alice").status_code == 200
    client.get("/w/alice/board/")
    assert client.get("/api/v1/runs").status_code == 200
    assert client.get("/api/v1/runs?workspace=bob").status_code == 404


def test_the_list_pins_its_query_count(client, viewer, echo, django_assert_num_queries):
    for _ in range(5):
        run_start(agent=echo, input={})
    auth = _bearer(viewer)

    with django_assert_num_queries(5):  # token, last used, membership, count, page
        assert len(client.get("/api/v1/runs", **auth).json()["items"]) == 5
