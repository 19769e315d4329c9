from __future__ import annotations

import pytest

from agents.models import Agent, Run
from agents.services import run_advance, run_answer, run_start

pytestmark = pytest.mark.django_db


@pytest.fixture
def waiting_run(make_agent):
    run, _ = run_start(agent=make_agent("demo.echo", slug="echo"), input={"text": "<b>hi</b>"})
    run_advance(run_id=run.pk)
    return Run.objects.get(pk=run.pk)


def test_the_runs_page_lists_runs_with_their_status(owner_client, waiting_run):
    page = owner_client.get("/w/alice/runs/").content.decode()

    assert f'id="run-{waiting_run.pk}"' in page
    assert '<span class="badge waiting">waiting</span>' in page


def test_the_runs_page_filters_with_an_htmx_partial(owner_client, waiting_run):
    response = owner_client.get(
        "/w/alice/runs/?status=succeeded", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="run-table"
    )

    fragment = response.content.decode()
    assert fragment.lstrip().startswith('<div id="run-table">')
    assert "No runs match these filters" in fragment


def test_a_run_page_shows_the_question_timeline_steps_and_escapes_input(owner_client, waiting_run):
    page = owner_client.get(f"/w/alice/runs/{waiting_run.pk}/").content.decode()

    assert "The agent asks:</strong> continue?" in page
    assert "1. start" in page and "2. ask" in page and 'class="bar ok"' in page
    assert "<b>hi</b>" not in page and "&lt;b&gt;hi&lt;/b&gt;" in page
    assert f'ws-connect="/ws/w/alice/runs/{waiting_run.pk}/?shown=waiting-3"' in page


def test_answering_from_the_run_page_resumes_the_run(owner_client, waiting_run):
    response = owner_client.post(f"/w/alice/runs/{waiting_run.pk}/answer/", {"answer": "yes"})

    assert response.status_code == 302
    waiting_run.refresh_from_db()
    assert waiting_run.status == "queued" and waiting_run.state["answer"] == "yes"


def test_a_viewer_sees_the_run_but_no_buttons_and_cannot_act(client, viewer, waiting_run):
    client.force_login(viewer)

    page = client.get(f"/w/alice/runs/{waiting_run.pk}/").content.decode()

    assert "continue?" in page and "Cancel run" not in page and 'name="answer"' not in page
    assert client.post(f"/w/alice/runs/{waiting_run.pk}/cancel/").status_code == 403


def test_an_outsider_gets_404_for_run_pages_and_actions(outsider_client, waiting_run):
    for path in ["", "answer/", "cancel/", "replay/", "fork/"]:
        method = outsider_client.get if not path else outsider_client.post
        assert method(f"/w/alice/runs/{waiting_run.pk}/{path}").status_code == 404
    assert Run.objects.get(pk=waiting_run.pk).status == "waiting"


def test_a_forked_run_is_shown_side_by_side_with_its_parent(owner_client, waiting_run):
    run_answer(run=waiting_run, answer="yes")
    run_advance(run_id=waiting_run.pk)

    response = owner_client.post(
        f"/w/alice/runs/{waiting_run.pk}/fork/", {"from_seq": 3, "state_patch": '{"answer": "no"}'}
    )
    fork = Run.objects.get(trigger="fork")
    run_advance(run_id=fork.pk)
    page = owner_client.get(response["Location"]).content.decode()

    assert response["Location"] == f"/w/alice/runs/{fork.pk}/"
    assert f"Side by side with #{waiting_run.pk}" in page and "Forked from" in page


def test_a_bad_fork_patch_is_reported_not_crashed(owner_client, waiting_run):
    response = owner_client.post(
        f"/w/alice/runs/{waiting_run.pk}/fork/",
        {"from_seq": 1, "state_patch": "[1, 2"},
        follow=True,
    )

    assert response.status_code == 200
    assert not Run.objects.filter(trigger="fork").exists()


def test_an_owner_creates_an_agent_and_an_operator_starts_a_run_from_the_agents_page(
    client, owner, operator
):
    client.force_login(owner)
    client.post("/w/alice/agents/new/", {"slug": "noop", "name": "No-op", "pipeline": "demo.noop"})
    assert Agent.objects.get().pipeline == "demo.noop"

    client.force_login(operator)
    response = client.post("/w/alice/agents/noop/run/", {"input": '{"n": 1}'})

    run = Run.objects.get()
    assert response["Location"] == f"/w/alice/runs/{run.pk}/" and run.input == {"n": 1}
    page = client.get("/w/alice/agents/").content.decode()
    assert "Start a run" in page and "New agent" not in page  # operators do not edit agents
