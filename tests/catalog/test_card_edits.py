"""What a person may change on a card: the reply's text, a description per language, a price,
a post's time — through the board's fields and the API alike; targets, ids and checks never."""

from __future__ import annotations

import pytest
from django.core import mail

from agents.pipelines import PermanentError
from approvals.edits import Edit, changed_paths, edited_payload, refuse_locked
from approvals.models import Proposal
from catalog.models import Variant
from tests.agents.conftest import drive
from tests.catalog.test_pipelines import (
    PRODUCT,
    _approve,
    _message,
    _run_of,
    intents,  # noqa: F401 - a fixture
    simulator,  # noqa: F401 - a fixture
)
from tests.catalog.test_webhooks import _deliver, _process_all
from tests.fakes.openai_server import Reply
from tests.helpers import pending_proposal
from tests.memory.test_api import Api

pytestmark = pytest.mark.django_db

BOARD = "/w/alice/board/"


@pytest.fixture
def reply(store, intents, simulator, fake_openai):  # noqa: F811
    """The support agent's reply to Ana, waiting for a person; a second customer's message
    sits beside it."""
    fake_openai.script(Reply("We are sorry to hear that. A new one is on its way."))
    _message(store, "My parcel arrived damaged, what now?")
    drive(_run_of("support"))
    other = _message(store, "Do you ship to Norway?", email="bo@example.com", name="Bo")
    return Proposal.objects.get(effector="catalog.send_reply"), other


def test_an_api_edit_that_retargets_a_reply_to_another_customer_is_refused(client, owner, reply):
    proposal, other = reply
    smuggled = {**proposal.payload, "message_id": other.pk, "body": "Hello Bo."}

    answer = Api(client, owner).send(
        "post",
        f"/proposals/{proposal.pk}/approve",
        {"payload_hash": proposal.payload_hash, "payload": smuggled},
    )

    assert answer.status_code == 400
    assert "message_id cannot be changed" in answer.json()["detail"]
    proposal.refresh_from_db()
    assert proposal.status == "pending" and proposal.payload["message_id"] != other.pk
    assert mail.outbox == []


def test_an_api_edit_of_a_reply_s_checks_is_refused(client, owner, reply):
    proposal, _ = reply
    cleared = {**proposal.payload, "checks": []}

    answer = Api(client, owner).send(
        "post",
        f"/proposals/{proposal.pk}/approve",
        {"payload_hash": proposal.payload_hash, "payload": cleared},
    )

    assert answer.status_code == 400 and "checks" in answer.json()["detail"]


def test_the_board_edits_a_reply_s_text_and_ignores_any_other_field_it_is_sent(
    owner_client, reply, django_capture_on_commit_callbacks
):
    proposal, other = reply
    page = owner_client.get(BOARD).content.decode()
    assert 'name="edit:body"' in page and 'name="edit:message_id"' not in page

    owner_client.post(
        f"{BOARD}{proposal.pk}/approve/",
        {
            "payload_hash": proposal.payload_hash,
            "edit": "1",
            "edit:body": "So sorry! A new one leaves today.",
            "edit:message_id": str(other.pk),  # not a field of the card: never read
            "json:message_id": str(other.pk),
        },
    )

    proposal.refresh_from_db()
    assert proposal.status == "approved" and proposal.edited
    assert proposal.payload["body"] == "So sorry! A new one leaves today."
    assert proposal.payload["message_id"] == proposal.proposed_payload["message_id"]


def test_an_untouched_subject_is_not_an_edit(owner_client, reply):
    proposal, _ = reply
    page = owner_client.get(BOARD).content.decode()
    assert 'name="edit:subject"' in page

    owner_client.post(
        f"{BOARD}{proposal.pk}/approve/",
        {
            "payload_hash": proposal.payload_hash,
            "edit": "1",
            "edit:subject": "",  # as the card showed it: blank, the customer's own subject
            "edit:body": proposal.payload["body"],
        },
    )

    proposal.refresh_from_db()
    assert proposal.status == "approved" and not proposal.edited


def test_a_description_is_edited_per_language_and_keeps_its_other_languages(
    client,
    owner_client,
    owner,
    simulator,  # noqa: F811
):
    _deliver(client, "products/create", PRODUCT)
    _process_all()
    proposal = Proposal.objects.get(run=drive(_run_of("catalog-writer")))
    spanish = proposal.payload["descriptions"]["es"]
    page = owner_client.get(BOARD).content.decode()
    assert "<trix-editor" in page and 'name="edit:descriptions/en"' in page

    owner_client.post(
        f"{BOARD}{proposal.pk}/approve/",
        {
            "payload_hash": proposal.payload_hash,
            "edit": "1",
            "edit:descriptions/en": "<div>Soft <strong>cotton</strong>, cut for every day.</div>",
        },
    )

    proposal.refresh_from_db()
    assert proposal.payload["descriptions"] == {
        "en": "<div>Soft <strong>cotton</strong>, cut for every day.</div>",
        "es": spanish,
    }


def test_taking_a_language_out_of_a_description_is_refused(client, owner, simulator):  # noqa: F811
    _deliver(client, "products/create", PRODUCT)
    _process_all()
    proposal = Proposal.objects.get(run=drive(_run_of("catalog-writer")))
    english_only = {**proposal.payload, "descriptions": {"en": "<p>Soft cotton.</p>"}}

    with pytest.raises(PermanentError, match=r"descriptions\.es cannot be changed"):
        _approve(proposal, owner, payload=english_only)


def test_a_price_is_edited_in_the_shop_s_currency(owner_client, store, proposer):
    store.currency = "EUR"
    store.save()
    variant = Variant.objects.create(
        product=store.workspace.products.create(
            connection=store, external_id=7, title="Mug", handle="mug"
        ),
        external_id=70,
        title="Blue",
        price="18.00",
    )
    proposal = pending_proposal(
        proposer,
        effector="catalog.change_price",
        target="variant:70",
        payload={"variant_id": variant.external_id, "price": "19.00"},
        facts={"currency": "EUR", "old_price": 18.0},
    )
    proposal.payload_hash = _hash(proposal.payload)
    proposal.save()

    page = owner_client.get(BOARD).content.decode()
    assert "Change the price of Mug · Blue from €18.00 to €19.00" in page
    assert 'name="edit:price"' in page and '<span class="currency">€</span>' in page

    owner_client.post(
        f"{BOARD}{proposal.pk}/approve/",
        {"payload_hash": proposal.payload_hash, "edit": "1", "edit:price": "19,50"},
    )

    proposal.refresh_from_db()
    assert proposal.payload == {"variant_id": 70, "price": "19.50"}


def _hash(payload):
    from approvals.services import payload_hash

    return payload_hash(payload)


# -- the rules themselves ----------------------------------------------------------------------


def test_changed_paths_name_every_place_a_payload_differs():
    old = {"body": "a", "descriptions": {"en": "x", "es": "y"}, "message_id": 1}
    new = {"body": "b", "descriptions": {"en": "x"}, "message_id": 2, "subject": "s"}

    assert changed_paths(old, new) == [
        ("body",),
        ("descriptions", "es"),
        ("message_id",),
        ("subject",),
    ]


def test_an_editable_field_may_be_added_but_not_taken_away():
    edits = [Edit(("subject",), "line", "Subject"), Edit(("descriptions", "es"), "html", "es")]
    refuse_locked(
        edits, {"descriptions": {"es": "y"}}, {"descriptions": {"es": "z"}, "subject": "s"}
    )

    with pytest.raises(PermanentError, match=r"descriptions\.es"):
        refuse_locked(
            edits, {"descriptions": {"es": "y", "en": "x"}}, {"descriptions": {"en": "x"}}
        )


def test_a_money_field_reads_a_comma_and_refuses_what_is_not_an_amount():
    price = Edit(("price",), "money", "Price", "18.00")

    assert edited_payload({"price": "18.00"}, [price], {"edit:price": "19,5"}, tz=None) == {
        "price": "19.50"
    }
    with pytest.raises(PermanentError, match="not an amount"):
        edited_payload({"price": "18.00"}, [price], {"edit:price": "cheap"}, tz=None)


def test_a_time_is_read_on_the_member_s_clock():
    from zoneinfo import ZoneInfo

    when = Edit(("publish_at",), "datetime", "Publish at", "2026-05-01T07:00:00+00:00")

    edited = edited_payload(
        {"publish_at": when.value},
        [when],
        {"edit:publish_at": "2026-05-01T10:30"},
        tz=ZoneInfo("Europe/Madrid"),
    )

    assert edited == {"publish_at": "2026-05-01T10:30:00+02:00"}


def test_a_card_with_nothing_a_person_writes_offers_no_edit(owner_client, store, proposer):
    store.workspace.products.create(connection=store, external_id=9, title="Scarf", handle="s")
    card = pending_proposal(
        proposer,
        effector="catalog.set_product_status",
        target="product:9",
        payload={"product_id": 9, "status": "draft"},
    )

    page = owner_client.get(BOARD).content.decode()
    article = page[page.index(f'id="proposal-{card.pk}"') :].split("</article>")[0]

    assert "Hide Scarf from the shop" in article
    assert "Approve as edited" not in article and ">Approve</button>" in article
