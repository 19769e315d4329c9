"""The runs pages in Chromium, with a real worker executing and the page updating itself."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from agents.services import agent_create, run_start
from tests.agents.conftest import wait_for_run
from tests.browser.test_shell import _log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_answering_on_the_run_page_shows_the_run_finish_without_reloading(
    page, web_server, worker, owner, workspace
):
    agent = agent_create(workspace=workspace, slug="echo", name="Echo", pipeline="demo.echo")
    run, _ = run_start(agent=agent, input={"text": "<script>alert(1)</script>"})
    wait_for_run(run.pk, "waiting")
    _log_in(page, web_server, "alice@shop.example")

    page.goto(f"{web_server}/w/alice/runs/{run.pk}/")
    expect(page.get_by_text("The agent asks:")).to_be_visible()
    page.get_by_label("Answer").fill("yes")
    page.get_by_role("button", name="Answer").click()

    expect(page.locator("#run-status")).to_have_text("succeeded", timeout=15_000)
    expect(page.locator(".checkpoint")).to_have_count(3)
    assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0


def test_a_run_started_elsewhere_appears_in_the_open_runs_list(
    page, web_server, worker, owner, workspace
):
    agent = agent_create(workspace=workspace, slug="noop", name="No-op", pipeline="demo.noop")
    _log_in(page, web_server, "alice@shop.example")
    page.goto(f"{web_server}/w/alice/runs/")
    expect(page.locator("#live-status")).to_have_text("● live")
    expect(page.locator("#no-runs")).to_be_visible()

    run, _ = run_start(agent=agent, input={})

    row = page.locator(f"#run-{run.pk}")
    expect(row).to_be_visible(timeout=15_000)
    expect(row.locator(".badge")).to_have_text("succeeded", timeout=15_000)
    expect(page.locator("#no-runs")).to_have_count(0)
