"""The board in Chromium: a pending card arrives live, the operator edits and approves it,
and watches it turn committed without reloading."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from agents.services import run_start
from approvals.models import Proposal
from memory.models import MemoryItem
from tests.agents.conftest import wait_for_run
from tests.browser.test_shell import _log_in
from tests.helpers import pending_proposal

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_edits_and_approves_a_card_and_watches_it_commit(page, watched_board):
    agent = watched_board

    payload = {"namespace": "notes", "key": "supplier", "content": "Call the supplier on Monday."}
    run, _ = run_start(
        agent=agent,
        input={
            "effector": "core.note",
            "payload": payload,
            "target": "notes/supplier",
            "rationale": "Orders are late <b>again</b>.",
        },
    )
    wait_for_run(run.pk, "waiting")
    proposal = Proposal.objects.get(run=run)
    card = page.locator(f"#proposal-{proposal.pk}")
    expect(card).to_contain_text("Call the supplier on Monday.")  # pushed, no reload
    expect(card).to_contain_text("Orders are late <b>again</b>.")  # shown, never parsed

    card.focus()
    page.keyboard.press("e")  # opens the edit form
    card.locator("textarea[name='edit:content']").fill("Call the supplier on Tuesday.")
    card.get_by_role("button", name="Approve as edited").click()

    expect(card.locator(".badge.committed")).to_be_visible(timeout=30_000)
    wait_for_run(run.pk, "succeeded")
    assert MemoryItem.objects.get(key="supplier").content == "Call the supplier on Tuesday."
    page.get_by_role("link", name="Done").click()
    expect(page.locator(f"#proposal-{proposal.pk}")).to_contain_text("edited before approval")


def test_cards_made_while_the_server_was_restarting_appear_when_the_board_reconnects(
    page, operator, workspace, make_agent
):
    from urllib.parse import urlsplit

    from tests.helpers import web_serving

    agent = make_agent("demo.noop", slug="quiet")
    with web_serving() as (url, _process):
        _log_in(page, url, "olivia@shop.example")
        page.goto(f"{url}/w/alice/board/")
        expect(page.locator("#live-status")).to_have_text("● live")
    # The server is gone; meanwhile a card is made (and its push is lost with it).
    made = pending_proposal(
        agent,
        target="notes/missed",
        payload={"content": "Made while nobody was listening."},
        risk="low",
    )
    expect(page.locator(f"#proposal-{made.pk}")).to_have_count(0)

    with web_serving(port=urlsplit(url).port):
        expect(page.locator(f"#proposal-{made.pk}")).to_contain_text(
            "Made while nobody was listening.", timeout=60_000
        )


def test_live_pushes_for_other_pages_leave_no_console_error_and_the_counter_moves(
    page, watched_board
):
    agent = watched_board
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    waiting = page.locator("#count-pending")
    before = int(waiting.inner_text())

    run, _ = run_start(
        agent=agent,
        input={
            "effector": "core.note",
            "payload": {"content": "Order more boxes."},
            "target": "notes/boxes",
        },
    )
    wait_for_run(run.pk, "waiting")
    card = page.locator(f"#proposal-{Proposal.objects.get(run=run).pk}")
    expect(card).to_contain_text("Order more boxes.")  # the card and the run's row both came
    expect(waiting).to_have_text(str(before + 1))  # the tab's counter moved with it

    card.get_by_role("button", name="Reject").click()
    expect(waiting).to_have_text(str(before))
    expect(page.locator(".caught-up")).to_be_visible()  # nothing left to decide
    assert not [e for e in errors if "oobErrorNoTarget" in e], errors
