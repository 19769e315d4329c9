"""Models in Chromium: a run that has no model waits and says so; the owner adds a provider
on the Models page and the run finishes on it, the page showing which tier answered."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from agents.services import agent_create, run_start
from tests.agents.conftest import wait_for_run
from tests.browser.test_shell import _log_in
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.helpers import models_free

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_run_waiting_for_a_model_finishes_once_the_owner_adds_a_provider(
    page, web_server, worker, owner, workspace
):
    server = FakeOpenAI()
    server.script(Reply(content="Linen <b>breathes</b>: pick white or sand."))
    models_free()
    agent = agent_create(
        workspace=workspace, slug="try-model", name="Try", pipeline="demo.model_call"
    )
    request = {"messages": [{"role": "user", "content": "Which colour for summer?"}]}
    run, _ = run_start(agent=agent, input={"capability": "plan", "request": request})
    wait_for_run(run.pk, "waiting")
    _log_in(page, web_server, "alice@shop.example")

    page.goto(f"{web_server}/w/alice/runs/{run.pk}/")
    expect(page.locator("#waiting")).to_contain_text("No model configured for plan")
    page.get_by_role("link", name="Models").first.click()
    expect(page.get_by_role("heading", name="Providers")).to_be_visible()
    page.get_by_label("Name").fill("workshop")
    page.get_by_label("Base URL").fill(server.base_url)
    page.get_by_label("Small model").fill("qwen-plus")
    page.get_by_label("Default for this workspace").check()
    page.get_by_role("button", name="Save provider").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    expect(page.locator("#routes")).to_contain_text("qwen-plus (workshop)")

    wait_for_run(run.pk, "succeeded")
    page.goto(f"{web_server}/w/alice/runs/{run.pk}/")
    expect(page.locator("#run-status")).to_have_text("succeeded")
    expect(page.locator(".badge.tier-remote").first).to_be_attached()  # in the step journal
    expect(page.locator("#run-live")).to_contain_text("Linen <b>breathes</b>")
    assert page.locator("#run-live b").count() == 0  # model output is shown, never parsed
    assert [r["model"] for r in server.requests] == ["qwen-plus"]
    server.close()
