from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async

from agents.services import run_start
from aios_site.live import workspace_broadcast
from approvals.events import proposal_changed
from approvals.models import AuditEntry
from tests.agents.conftest import drive
from tests.helpers import pending_proposal
from tests.sockets import ORIGIN, connect, frame_with, run, session_cookie

# The consumer reads the session and membership from another thread: data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def test_a_member_connects_and_is_told_the_connection_is_live(owner):
    async def scenario():
        cookie = await sync_to_async(session_cookie)(owner)
        ws, connected, _ = await connect("/ws/w/alice/", [ORIGIN, (b"cookie", cookie)])
        assert connected
        message = await ws.receive_from(timeout=5)
        await ws.disconnect()
        return message

    message = run(scenario())

    assert 'id="live-status"' in message and 'hx-swap-oob="true"' in message and "live" in message


def test_a_broadcast_reaches_every_member_of_the_workspace(owner, workspace):
    async def scenario():
        cookie = await sync_to_async(session_cookie)(owner)
        ws, connected, _ = await connect("/ws/w/alice/", [ORIGIN, (b"cookie", cookie)])
        assert connected
        await ws.receive_from(timeout=5)  # the live status
        await sync_to_async(workspace_broadcast)(
            workspace_id=workspace.pk,
            template="shell/live.html#live-status",
            context={"live": True},
        )
        message = await ws.receive_from(timeout=5)
        await ws.disconnect()
        return message

    assert "● live" in run(scenario())


def test_an_anonymous_socket_is_refused():
    async def scenario():
        return await connect("/ws/w/alice/", [ORIGIN])

    _, connected, code = run(scenario())

    assert not connected and code == 4403


def test_an_outsider_socket_is_refused(outsider, workspace):
    async def scenario():
        cookie = await sync_to_async(session_cookie)(outsider)
        return await connect("/ws/w/alice/", [ORIGIN, (b"cookie", cookie)])

    _, connected, code = run(scenario())

    assert not connected and code == 4403


@pytest.mark.parametrize("origin", [b"http://evil.example", b"null"])
def test_a_socket_from_a_foreign_origin_is_refused_even_with_a_valid_session(owner, origin):
    async def scenario():
        cookie = await sync_to_async(session_cookie)(owner)
        return await connect("/ws/w/alice/", [(b"origin", origin), (b"cookie", cookie)])

    _, connected, _ = run(scenario())

    assert not connected


def test_a_socket_without_an_origin_is_refused_even_with_a_valid_session(owner):
    async def scenario():
        cookie = await sync_to_async(session_cookie)(owner)
        return await connect("/ws/w/alice/", [(b"cookie", cookie)])

    _, connected, _ = run(scenario())

    assert not connected


def test_an_outsider_cannot_follow_a_run_of_another_workspace(outsider, make_agent):
    alices, _ = run_start(agent=make_agent("demo.noop"), input={})

    async def scenario():
        cookie = await sync_to_async(session_cookie)(outsider)
        # Under Alice's workspace, and under his own with Alice's run id.
        return [
            await connect(path, [ORIGIN, (b"cookie", cookie)])
            for path in (f"/ws/w/alice/runs/{alices.pk}/", f"/ws/w/bob/runs/{alices.pk}/")
        ]

    refusals = run(scenario())

    assert [(connected, code) for _, connected, code in refusals] == [(False, 4403)] * 2


def test_a_viewer_sees_a_card_change_but_is_given_no_way_to_decide_it(
    viewer, operator, workspace, make_agent
):
    agent = make_agent("demo.propose", slug="proposer")
    proposal = pending_proposal(
        agent, run=run_start(agent=agent, input={"effector": "core.note"})[0]
    )
    audited = AuditEntry.objects.count()

    async def scenario():
        frames = {}
        for name, user in (("viewer", viewer), ("operator", operator)):
            cookie = await sync_to_async(session_cookie)(user)
            ws, connected, _ = await connect("/ws/w/alice/", [ORIGIN, (b"cookie", cookie)])
            assert connected
            await ws.receive_from(timeout=5)  # the live status
            frames[name] = ws
        # What a viewer sends is not a way to act: the socket only pushes.
        await frames["viewer"].send_to(
            text_data=json.dumps({"action": "approve", "proposal": proposal.pk})
        )
        await sync_to_async(proposal_changed)(proposal)
        card = f'id="proposal-{proposal.pk}"'
        received = {name: await frame_with(ws, card) for name, ws in frames.items()}
        for ws in frames.values():
            await ws.disconnect()
        return received

    received = run(scenario())

    assert "Approve" in received["operator"] and "hx-post" in received["operator"]
    assert "Approve" not in received["viewer"] and "hx-post" not in received["viewer"]
    proposal.refresh_from_db()
    assert proposal.status == "pending" and AuditEntry.objects.count() == audited


def test_a_run_page_pushed_to_an_operator_keeps_the_answer_form_and_a_viewers_has_none(
    viewer, operator, make_agent
):
    waiting = drive(run_start(agent=make_agent("demo.echo"), input={"text": "hi"})[0])
    assert waiting.status == "waiting"

    async def scenario():
        frames = {}
        for name, user in (("viewer", viewer), ("operator", operator)):
            cookie = await sync_to_async(session_cookie)(user)
            # The page showed the run before it waited: the socket brings it up to date.
            path = f"/ws/w/alice/runs/{waiting.pk}/?shown=running-1"
            ws, connected, _ = await connect(path, [ORIGIN, (b"cookie", cookie)])
            assert connected
            frames[name] = await frame_with(ws, 'id="run-live"')
            await ws.disconnect()
        return frames

    frames = run(scenario())

    answer = f'hx-post="/w/alice/runs/{waiting.pk}/answer/"'
    assert "continue?" in frames["operator"] and answer in frames["operator"]
    assert "continue?" in frames["viewer"] and "hx-post" not in frames["viewer"]
