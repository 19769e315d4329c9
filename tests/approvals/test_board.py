"""The board: cards with diffs, sources and rules; approve, edit, reject, bulk; roles;
escaping of model output; constant queries per page; cards pushed live over the websocket."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.services import run_start
from approvals.models import Proposal
from tests.agents.conftest import drive
from tests.memory.test_memory import fact
from tests.sockets import ORIGIN, connect, run, session_cookie

pytestmark = pytest.mark.django_db

BOARD = "/w/alice/board/"
HOSTILE = '<script>alert(1)</script><b hx-get="/w/alice/agents/" hx-trigger="load">x</b>'


@pytest.fixture
def waiting_for_all(owner, client):
    """Rules under which every note waits for a person."""
    from tests.memory.test_api import Api

    rule = {"name": "Everything waits", "effector": "*", "decision": "require_approval"}
    Api(client, owner).send("put", "/policy-rules", {"rules": [rule]})


def _propose(agent, content: str, **more) -> Proposal:
    payload = {"content": content, "namespace": "notes", "key": more.pop("key", "todo")}
    run_ = drive(
        run_start(
            agent=agent,
            input={
                "effector": "core.note",
                "payload": payload,
                "target": f"notes/{payload['key']}",
                **more,
            },
        )[0]
    )
    return Proposal.objects.get(run=run_)


def test_a_pending_card_shows_the_diff_rationale_sources_and_rule(
    operator_client, workspace, proposer, waiting_for_all
):
    fact(workspace, "Call the supplier on Monday.", key="todo", namespace="notes")
    proposal = _propose(
        proposer,
        "Call the supplier on Tuesday.",
        rationale="The supplier moved its day.",
        sources=["notes/todo@1"],
    )

    page = operator_client.get(BOARD).content.decode()

    assert f'id="proposal-{proposal.pk}"' in page
    assert "<del>Monday.</del><ins>Tuesday.</ins>" in page
    assert "The supplier moved its day." in page
    assert 'href="/w/alice/memory/key/notes/todo/">notes/todo v1</a>' in page
    assert "rule: Everything waits (needs operator)" in page
    assert "Approve</button>" in page


def test_model_output_in_a_card_is_escaped_and_its_hx_attributes_inert(
    operator_client, proposer, waiting_for_all
):
    _propose(proposer, HOSTILE, rationale=HOSTILE)

    page = operator_client.get(BOARD).content.decode()

    assert "<script>alert(1)" not in page and 'hx-trigger="load"' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_board_costs_the_same_queries_for_3_cards_as_for_40(
    operator_client, proposer, waiting_for_all
):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert operator_client.get(BOARD).status_code == 200
        return len(captured)

    for n in range(3):
        _propose(proposer, f"Note {n}.", key=f"k{n}")
    few = queries()
    for n in range(3, 40):
        _propose(proposer, f"Note {n}.", key=f"k{n}")

    assert queries() == few


def test_approving_from_the_card_returns_the_card_approved(
    operator_client, proposer, waiting_for_all
):
    proposal = _propose(proposer, "Call the supplier.")

    card = operator_client.post(
        f"{BOARD}{proposal.pk}/approve/",
        {"payload_hash": proposal.payload_hash},
        HTTP_HX_REQUEST="true",
    ).content.decode()

    assert card.lstrip().startswith(f'<article id="proposal-{proposal.pk}"')
    assert ">approved<" in card and "Approve</button>" not in card
    assert Proposal.objects.get().status == "approved"


def test_an_edit_on_the_card_is_approved_as_edited(operator_client, proposer, waiting_for_all):
    proposal = _propose(proposer, "Call the supplier.")

    operator_client.post(
        f"{BOARD}{proposal.pk}/approve/",
        {
            "payload_hash": proposal.payload_hash,
            "edit": "1",
            "field:content": "Call the supplier before noon.",
            "field:namespace": "notes",
            "field:key": "todo",
        },
    )

    approved = Proposal.objects.get()
    assert approved.edited and approved.payload["content"] == "Call the supplier before noon."


def test_a_stale_card_says_why_it_was_not_approved(operator_client, proposer, waiting_for_all):
    proposal = _propose(proposer, "Call the supplier.")

    card = operator_client.post(
        f"{BOARD}{proposal.pk}/approve/", {"payload_hash": "0" * 64}, HTTP_HX_REQUEST="true"
    ).content.decode()

    assert "the proposal changed since it was shown" in card
    assert Proposal.objects.get().status == "pending"


def test_rejecting_keeps_the_reason(operator_client, proposer, waiting_for_all):
    proposal = _propose(proposer, "Call the supplier.")

    operator_client.post(f"{BOARD}{proposal.pk}/reject/", {"reason": "done already"})

    rejected = Proposal.objects.get()
    assert (rejected.status, rejected.reason) == ("rejected", "done already")
    assert "done already" in operator_client.get(BOARD, {"tab": "rejected"}).content.decode()


def test_selected_low_risk_cards_are_approved_together(operator_client, proposer, waiting_for_all):
    first, second = _propose(proposer, "A.", key="a"), _propose(proposer, "B.", key="b")

    operator_client.post(
        f"{BOARD}approve-selected/",
        {
            "selected": [
                f"{first.pk}:{first.payload_hash}",
                f"{second.pk}:{second.payload_hash}",
            ]
        },
    )

    assert set(Proposal.objects.values_list("status", flat=True)) == {"approved"}


def test_viewers_see_cards_without_actions_and_cannot_post(
    client, viewer, outsider, proposer, waiting_for_all
):
    proposal = _propose(proposer, "Call the supplier.")
    client.force_login(viewer)

    page = client.get(BOARD).content.decode()
    refused = client.post(f"{BOARD}{proposal.pk}/approve/", {"payload_hash": proposal.payload_hash})
    client.force_login(outsider)

    assert "Call the supplier." in page and "Approve</button>" not in page
    assert refused.status_code == 403
    assert client.get("/w/alice/board/").status_code == 404
    assert client.post(f"{BOARD}{proposal.pk}/reject/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_new_proposal_reaches_the_board_over_the_websocket(operator, proposer, waiting_for_all):
    async def scenario():
        cookie = await sync_to_async(session_cookie)(operator)
        ws, connected, _ = await connect("/ws/w/alice/", [ORIGIN, (b"cookie", cookie)])
        assert connected
        await ws.receive_from(timeout=5)  # the live status
        proposal = await sync_to_async(_propose)(proposer, f"Pushed {HOSTILE}")
        messages = []
        while not any(f'id="proposal-{proposal.pk}"' in m for m in messages):
            # The run's row is pushed to the workspace too, before or after the card.
            messages.append(await ws.receive_from(timeout=5))
        await ws.disconnect()
        return proposal, messages

    proposal, messages = run(scenario())

    card = next(m for m in messages if f'id="proposal-{proposal.pk}"' in m)
    assert card.startswith('<div hx-swap-oob="afterbegin:#cards-new">')
    assert "Approve</button>" in card
    assert "<script>alert(1)" not in card and "&lt;script&gt;" in card


def test_the_owner_edits_the_rules_on_the_policy_page_and_a_mistake_keeps_the_text(
    client, owner, operator
):
    client.force_login(owner)
    page = "/w/alice/settings/policy/"

    shown = client.get(page).content.decode()
    bad = client.post(f"{page}rules/", {"rules": '[{"name": "x", "decision": "later"}'})
    saved = client.post(
        f"{page}rules/",
        {
            "rules": '[{"name": "Only the owner", "effector": "*", '
            '"decision": "require_approval", "required_role": "owner"}]'
        },
        follow=True,
    )

    assert "This workspace uses the shipped defaults." in shown
    assert "Never sell below cost" in shown
    assert "Not saved: not JSON" in bad.content.decode()
    assert "[{&quot;name&quot;: &quot;x&quot;" in bad.content.decode()  # what was typed stays
    assert "Only the owner" in saved.content.decode() and "require_approval (owner)" in (
        saved.content.decode()
    )
    client.force_login(operator)
    assert client.post(f"{page}rules/", {"rules": "[]"}).status_code == 403
    assert "Save rules" not in client.get(page).content.decode()


def test_a_webhook_endpoint_needs_an_http_url_and_a_long_secret(client, owner):
    client.force_login(owner)

    short = client.post(
        "/w/alice/settings/policy/endpoint/",
        {"name": "crm", "url": "https://crm.example/hook", "secret": "short"},
    )
    saved = client.post(
        "/w/alice/settings/policy/endpoint/",
        {"name": "crm", "url": "https://crm.example/hook", "secret": "s" * 20},
        follow=True,
    )

    assert "Not saved: the secret needs at least 16 characters" in short.content.decode()
    assert "https://crm.example/hook" in saved.content.decode()
