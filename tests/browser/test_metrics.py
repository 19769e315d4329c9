"""Outcomes in Chromium: a card that arrives live counts as opened once the operator at the
board turns to it, not when it lands on an unattended screen; the Metrics page changes its
period and agent in place, keeping the URL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from agents.services import run_start
from approvals.models import Proposal, ProposalOpened
from tests.agents.conftest import wait_for_run
from tests.approvals.test_outcomes import _agent, _proposal, _run
from tests.browser.test_shell import _log_in
from tests.helpers import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_card_pushed_onto_the_board_counts_as_opened_once_the_operator_turns_to_it(
    page, watched_board, operator
):
    agent = watched_board

    payload = {"namespace": "notes", "key": "supplier", "content": "Call the supplier on Monday."}
    run, _ = run_start(
        agent=agent, input={"effector": "core.note", "payload": payload, "target": "notes/x"}
    )
    wait_for_run(run.pk, "waiting")  # a worker ran it: the card is announced from there
    proposal = Proposal.objects.get(run=run)
    card = page.locator(f"#proposal-{proposal.pk}")
    expect(card).to_contain_text("Call the supplier on Monday.")  # pushed, no reload
    page.wait_for_timeout(6000)  # on screen, but nobody has touched the page for a while
    assert not ProposalOpened.objects.filter(proposal=proposal).exists()
    page.keyboard.press("j")  # the operator moves to the card
    wait_until(lambda: ProposalOpened.objects.filter(proposal=proposal).exists(), timeout=10)
    card.get_by_role("button", name="Reject").click()
    expect(card.locator(".badge.rejected")).to_be_visible()

    proposal.refresh_from_db()
    assert ProposalOpened.objects.get(proposal=proposal).user_id == operator.pk
    assert proposal.review_seconds is not None and proposal.reject_category == "other"


def test_the_metrics_page_changes_period_and_agent_in_place(page, web_server, owner, workspace):
    now = timezone.now()
    for slug in ("writer", "support"):
        run = _run(_agent(workspace, slug, "catalog.reply_to_customer"))
        _proposal(run, "catalog.send_reply", created=now, decision="auto_approve",
                  status="committed", decided_at=now, committed_at=now)  # fmt: skip
    _log_in(page, web_server, "alice@shop.example")

    page.get_by_role("link", name="Metrics").click()
    expect(page.get_by_role("heading", name="Metrics")).to_be_visible()
    expect(page.locator("#kpi-tasks .kpi-figure")).to_have_text("2")
    # The chart is drawn: a bar for the one day with work, and the browser gives it room.
    bar = page.locator("#chart-minutes svg rect.chart-bar")
    expect(bar).to_have_count(1)
    assert float(bar.get_attribute("height")) > 0
    assert bar.bounding_box()["height"] > 10
    page.get_by_role("link", name="7 days").click()
    expect(page).to_have_url(f"{web_server}/w/alice/metrics/?since={_since(7)}&until={_since(1)}")
    page.get_by_label("Agent").select_option("writer")
    page.get_by_role("button", name="Show").click()

    expect(page.locator("#kpi-tasks .kpi-figure")).to_have_text("1")
    expect(page).to_have_url(
        f"{web_server}/w/alice/metrics/?since={_since(7)}&until={_since(1)}&agent=writer"
    )
    expect(page.get_by_role("heading", name="Metrics")).to_have_count(1)  # the body, swapped
    expect(page.locator("#live-status")).to_have_text("● live")  # no reload


def _since(days: int) -> str:
    """The first of the last `days` days, as the page writes it."""
    return str(timezone.localdate() - timedelta(days=days - 1))
