"""Live progress: a real worker's commits reach websocket clients as rendered partials."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from agents.services import run_answer, run_start
from tests.agents.conftest import wait_for_run
from tests.sockets import ORIGIN, connect, run, session_cookie

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


async def until_succeeded(socket, limit: int = 5) -> list[str]:
    messages = []
    while len(messages) < limit:
        messages.append(await socket.receive_from(timeout=15))
        if "badge succeeded" in messages[-1]:
            return messages
    raise AssertionError(f"no push showed the run succeeded: {messages}")


def test_progress_reaches_the_run_page_and_the_runs_list_without_reload(worker, owner, make_agent):
    agent = make_agent("demo.echo")
    waiting, _ = run_start(agent=agent, input={"text": "hi"})
    wait_for_run(waiting.pk, "waiting")

    async def scenario():
        cookie = await sync_to_async(session_cookie)(owner)
        headers = [ORIGIN, (b"cookie", cookie)]
        page, connected, _ = await connect(f"/ws/w/alice/runs/{waiting.pk}/", headers)
        assert connected
        listing, connected, _ = await connect("/ws/w/alice/", headers)
        assert connected
        await listing.receive_from(timeout=5)  # the live badge
        await sync_to_async(run_answer)(run=waiting, answer="yes")
        pushed = await until_succeeded(page)  # quick successive changes may arrive as one push
        rows = await until_succeeded(listing)
        await page.disconnect()
        await listing.disconnect()
        return pushed, rows

    pushed, rows = run(scenario())

    assert all('id="run-live" hx-swap-oob="true"' in html for html in pushed)
    assert '<span class="badge succeeded" id="run-status">succeeded</span>' in pushed[-1]
    assert all(
        f'<tr id="run-{waiting.pk}"' in html and 'hx-swap-oob="true"' in html for html in rows
    )
    assert "badge succeeded" in rows[-1]


def test_a_new_run_is_prepended_to_the_runs_list(worker, owner, make_agent):
    agent = make_agent("demo.noop")

    async def scenario():
        cookie = await sync_to_async(session_cookie)(owner)
        listing, _, _ = await connect("/ws/w/alice/", [ORIGIN, (b"cookie", cookie)])
        await listing.receive_from(timeout=5)
        new, _ = await sync_to_async(run_start)(agent=agent, input={})
        # The worker's own updates may overtake the creation (pushed from another process);
        # a browser drops an update for a row it does not have yet, then gets the row.
        frame = await listing.receive_from(timeout=15)
        while not frame.startswith("<tbody"):
            frame = await listing.receive_from(timeout=15)
        await listing.disconnect()
        return new, frame

    new, inserted = run(scenario())

    assert inserted.startswith('<tbody hx-swap-oob="afterbegin:#run-rows">')
    assert f'<tr id="run-{new.pk}"' in inserted


def test_a_socket_for_another_workspaces_run_is_refused(worker, outsider, make_agent):
    foreign, _ = run_start(agent=make_agent("demo.echo"), input={})

    async def scenario():
        cookie = await sync_to_async(session_cookie)(outsider)
        return await connect(f"/ws/w/alice/runs/{foreign.pk}/", [ORIGIN, (b"cookie", cookie)])

    _, connected, code = run(scenario())

    assert not connected and code == 4403
