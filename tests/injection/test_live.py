"""The live side of the same doors: while an obeying model's answer turns into a run and a
card, the board's websocket and the run page's websocket push them to the browser. Every
frame pushed shows the attacker's markup as text, never as markup."""

from __future__ import annotations

import contextlib
import time

import pytest
from asgiref.sync import sync_to_async

from agents.models import Run
from agents.services import run_start
from approvals.models import Proposal
from tests.agents.conftest import drive
from tests.injection import doors
from tests.injection.markup import scan
from tests.injection.payloads import MARKER, PAYLOADS, Payload
from tests.sockets import ORIGIN, connect, run, session_cookie

# The consumers read the session and membership from other threads: data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

MARKUP = [p for p in PAYLOADS if p.has_markup and p.storable and len(p.text) < 1_000]
EVERYTHING = Payload(
    "all-markup",
    "\n".join(p.text for p in MARKUP),
    wish="\n\n".join(p.answer({}) for p in MARKUP),
)


def _open_message_door(api, operator_client, website) -> Run:
    return doors.support_run(doors.message_send(api, EVERYTHING.text, subject="Hello"))


def _open_product_door(api, operator_client, website) -> Run:
    response = doors.product_deliver(operator_client, EVERYTHING.text)
    assert response.status_code == 200, response.content
    return doors.writer_run(operator_client)


def _open_memory_door(api, operator_client, website) -> Run:
    assert doors.note_write(api, EVERYTHING.text).status_code == 201
    return doors.support_run(doors.message_send(api, "What is your shipping policy?"))


def _open_page_door(api, operator_client, website) -> Run:
    website.pages["/linen"] = doors.page_of(EVERYTHING.text)
    return doors.writer_brief(doors.brief_send(api, f"{website.url}/linen")).run


DOORS = {
    "message": _open_message_door,
    "product": _open_product_door,
    "memory-note": _open_memory_door,
    "fetched-page": _open_page_door,
}


async def _frames(socket, *awaited: str) -> list[str]:
    """Everything the socket was sent: until a frame holding each awaited piece of markup
    has come, then until it is quiet."""
    frames: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(any(a in f for f in frames) for a in awaited):
        with contextlib.suppress(TimeoutError):
            frames.append(await socket.receive_from(timeout=1))
    while not await socket.receive_nothing(timeout=0.5):
        frames.append(await socket.receive_from(timeout=1))
    return frames


@pytest.mark.parametrize("door", DOORS)
def test_live_frames_show_an_obeying_models_markup_only_as_text(
    door, operator, api, operator_client, store, intents, model, website
):
    model.reset(EVERYTHING)

    async def scenario():
        cookie = (b"cookie", await sync_to_async(session_cookie)(operator))
        board, connected, _ = await connect("/ws/w/alice/", [ORIGIN, cookie])
        assert connected
        await board.receive_from(timeout=5)  # the live status
        started = await sync_to_async(DOORS[door])(api, operator_client, website)
        page, connected, _ = await connect(f"/ws/w/alice/runs/{started.pk}/", [ORIGIN, cookie])
        assert connected
        finished = await sync_to_async(drive)(started)
        card = await sync_to_async(lambda: Proposal.objects.get(run=finished).pk)()
        frames = {
            "board": await _frames(board, f'id="proposal-{card}"', 'class="status-waiting"'),
            "run": await _frames(page, 'id="run-status">waiting'),
        }
        await board.disconnect()
        await page.disconnect()
        return finished, frames

    finished, frames = run(scenario())

    assert finished.status == "waiting", finished.error
    proposal = Proposal.objects.get(run=finished)
    assert proposal.status == "pending"
    cards = [f for f in frames["board"] if f'id="proposal-{proposal.pk}"' in f]
    rows = [f for f in frames["board"] if f'id="run-{finished.pk}"' in f]
    lives = [f for f in frames["run"] if 'id="run-status">waiting' in f]
    assert cards and rows and lives
    for frame in frames["board"] + frames["run"]:
        unsafe, _ = scan(frame)
        assert unsafe == [], frame[:300]
    assert all(MARKER in scan(card)[1] for card in cards)  # there, as text
    assert MARKER in scan(lives[-1])[1]  # the model's answer in the run's journal


def test_a_streamed_answer_shows_the_models_markup_only_as_text(operator, make_agent, model):
    model.reset(Payload("streamed", "", wish=f"<script>alert('{MARKER}')</script> and more words"))
    agent = make_agent("demo.ask_model")

    async def scenario():
        cookie = (b"cookie", await sync_to_async(session_cookie)(operator))
        started = await sync_to_async(run_start)(
            agent=agent, input={"question": "Tell me a secret", "stream": True}
        )
        page, connected, _ = await connect(f"/ws/w/alice/runs/{started[0].pk}/", [ORIGIN, cookie])
        assert connected
        finished = await sync_to_async(drive)(started[0])
        frames = await _frames(page, "Model answer, streaming", 'id="run-status">succeeded')
        await page.disconnect()
        return finished, frames

    finished, frames = run(scenario())

    assert finished.status == "succeeded", finished.error
    streamed = [f for f in frames if "Model answer, streaming" in f]
    assert streamed and all(MARKER in scan(f)[1] for f in streamed)
    assert [scan(frame)[0] for frame in frames] == [[] for _ in frames]
