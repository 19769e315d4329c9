from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from aios_site.live import workspace_broadcast
from tests.sockets import ORIGIN, connect, run, session_cookie

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
