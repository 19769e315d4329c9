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
from tests.sockets import ORIGIN, connect, frame_with, run, session_cookie

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
    assert "Waits for an operator or the owner (rule “Everything waits”)" in page
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
    assert ">Approved, on its way<" in card and "Approve</button>" not in card
    assert Proposal.objects.get().status == "approved"


def test_an_edit_on_the_card_is_approved_as_edited(operator_client, proposer, waiting_for_all):
    proposal = _propose(proposer, "Call the supplier.")

    operator_client.post(
        f"{BOARD}{proposal.pk}/approve/",
        {
            "payload_hash": proposal.payload_hash,
            "edit": "1",
            "edit:content": "Call the supplier before noon.",
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
        card = await frame_with(ws, f'id="proposal-{proposal.pk}"')
        await ws.disconnect()
        return card

    card = run(scenario())

    assert card.startswith('<div hx-swap-oob="afterbegin:#cards-new">')
    assert '<span class="badge" id="count-pending" hx-swap-oob="true">1</span>' in card
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

    assert "This workspace uses the rules AIOS comes with." in shown
    assert "Never sell below cost" in shown
    assert "Not saved: not JSON" in bad.content.decode()
    assert "[{&quot;name&quot;: &quot;x&quot;" in bad.content.decode()  # what was typed stays
    assert "Only the owner" in saved.content.decode()
    assert "Any other change, waits for the owner." in saved.content.decode()
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


def test_the_owner_builds_a_rule_in_words_and_it_decides_the_next_card(owner_client, proposer):
    page = "/w/alice/settings/policy/"
    shown = owner_client.get(page).content.decode()
    assert "Price change, when the price change in % is more than 5, waits for the owner." in shown
    assert "Any change to the catalog, when the new price is less than the cost price" in shown

    owner_client.post(
        f"{page}add/",
        {
            "builder": "1",
            "name": "Low-risk notes wait",
            "effector": "core.note",
            "fact-1": "risk",
            "op-1": "==",
            "value-1": "low",
            "outcome": "operator",
            "before": "0",
        },
    )
    bad = owner_client.post(
        f"{page}add/",
        {
            "builder": "1",
            "name": "x",
            "effector": "*",
            "fact-1": "confidence",
            "op-1": ">=",
            "value-1": "very",
            "outcome": "auto",
        },
        follow=True,
    ).content.decode()

    rules = owner_client.get(page).content.decode()
    assert "Note for the team, when the risk is low, waits for an operator or the owner." in rules
    assert rules.index("Low-risk notes wait") < rules.index("Never sell below cost")
    assert "Not saved: condition 1: &#x27;very&#x27; is not a number" in bad
    assert _propose(proposer, "Call the supplier.").status == "pending"  # the new rule decided


def test_the_owner_moves_and_removes_rules(owner_client):
    from approvals.services import rules_for

    page = "/w/alice/settings/policy/"
    before = [rule["name"] for rule in rules_for(workspace_id=_alice())]

    owner_client.post(f"{page}up/", {"index": "1"})
    owner_client.post(f"{page}remove/", {"index": "0"})

    after = [rule["name"] for rule in rules_for(workspace_id=_alice())]
    assert after == [before[0], *before[2:]]


def _alice() -> int:
    from aios_site.accounts.models import Workspace

    return Workspace.objects.get(slug="alice").pk


def test_a_new_workspace_s_board_shows_the_way_to_its_first_cards(owner_client, workspace):
    from catalog.models import StoreConnection

    fresh = owner_client.get(BOARD).content.decode()
    assert "Getting started" in fresh
    assert '<a href="/w/alice/catalog/store/"><strong>Connect your store</strong></a>' in fresh

    StoreConnection.objects.create(
        workspace=workspace, shop_domain="alice.myshopify.com", access_token_encrypted="x"
    )
    connected = owner_client.get(BOARD).content.decode()
    assert '<span aria-label="done">✓</span> Connect your store' in connected
    assert '<a href="/w/alice/catalog/"><strong>Your catalog arrives</strong></a>' in connected
