"""Settings: an owner invites a member with a role, changes roles and removes members; each
person chooses the language and time zone pages speak."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.test import Client

from aios_site.accounts.models import Membership
from approvals.models import AuditEntry
from tests.helpers import pending_proposal

pytestmark = pytest.mark.django_db

SETTINGS = "/w/alice/settings/"


def _invite(client, email="nina@shop.example", role="operator"):
    answer = client.post(f"{SETTINGS}account/invite/", {"email": email, "role": role}, follow=True)
    return answer.content.decode()


def test_an_invited_person_sets_a_password_from_the_link_and_is_signed_in_with_their_role(
    owner_client, workspace
):
    page = _invite(owner_client)

    link = re.search(r"Send them this link to sign in: (http://\S+?/invite/\S+?/)<", page)
    assert link, "the settings page shows the invitation link"
    membership = Membership.objects.get(user__email="nina@shop.example")
    assert membership.role == "operator" and membership.workspace == workspace
    assert AuditEntry.objects.filter(action="member.invite", object_id="nina@shop.example").exists()

    nina = Client()
    form = nina.get(link.group(1), follow=True)
    assert "You were invited as <strong>nina@shop.example</strong>" in form.content.decode()
    done = nina.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a long and quiet river", "new_password2": "a long and quiet river"},
        follow=True,
    )
    assert done.redirect_chain[-1][0] == "/w/alice/board/"
    assert nina.get("/w/alice/board/").status_code == 200
    # The link works once.
    again = Client().get(link.group(1), follow=True).content.decode()
    assert "used already or is too old" in again


def test_only_the_owner_invites_or_changes_roles(operator_client, operator, owner):
    assert (
        operator_client.post(f"{SETTINGS}account/invite/", {"email": "x@y.example"}).status_code
        == 403
    )
    owner_membership = owner.memberships.get()
    answer = operator_client.post(
        f"{SETTINGS}account/role/", {"member": owner_membership.pk, "role": "viewer"}
    )
    assert answer.status_code == 403
    owner_membership.refresh_from_db()
    assert owner_membership.role == "owner"


def test_the_last_owner_cannot_step_down_or_be_removed(owner_client, owner):
    mine = owner.memberships.get()

    demoted = owner_client.post(
        f"{SETTINGS}account/role/", {"member": mine.pk, "role": "operator"}, follow=True
    )
    removed = owner_client.post(f"{SETTINGS}account/remove/", {"member": mine.pk}, follow=True)

    assert "a workspace needs an owner" in demoted.content.decode()
    assert "a workspace needs an owner" in removed.content.decode()
    mine.refresh_from_db()
    assert mine.role == "owner"


def test_an_owner_changes_a_role_and_removes_a_member_of_their_own_workspace_only(
    owner_client, operator, outsider
):
    olivia = operator.memberships.get()
    owner_client.post(f"{SETTINGS}account/role/", {"member": olivia.pk, "role": "viewer"})
    olivia.refresh_from_db()
    assert olivia.role == "viewer"
    assert AuditEntry.objects.filter(action="member.role", object_id=operator.email).exists()

    stranger = outsider.memberships.get()
    assert (
        owner_client.post(f"{SETTINGS}account/remove/", {"member": stranger.pk}).status_code == 404
    )
    owner_client.post(f"{SETTINGS}account/remove/", {"member": olivia.pk})
    assert not Membership.objects.filter(pk=olivia.pk).exists()
    assert Membership.objects.filter(pk=stranger.pk).exists()


def test_inviting_a_member_twice_or_a_bad_address_is_refused_with_a_reason(owner_client):
    _invite(owner_client)

    assert "is a member already" in _invite(owner_client)
    assert "not a valid email address" in _invite(owner_client, email="not-an-address")


def test_pages_speak_the_member_s_language_and_keep_their_clock(owner_client, owner, proposer):
    made = pending_proposal(
        proposer,
        effector="catalog.change_price",
        target="variant:70",
        payload={"variant_id": 70, "price": "19.00"},
        facts={"currency": "EUR", "old_price": 18.0},
    )
    made.created_at = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)
    made.save()

    english = owner_client.get("/w/alice/board/").content.decode()
    assert "from €18.00 to €19.00" in english and "3:30 p.m." in english

    owner_client.post(
        f"{SETTINGS}account/preferences/", {"language": "de", "time_zone": "Europe/Berlin"}
    )
    german = owner_client.get("/w/alice/board/").content.decode()

    assert owner.memberships.get().time_zone == "Europe/Berlin"
    assert "from 18,00\xa0€ to 19,00\xa0€" in german  # the words stay English, the values not
    assert '<html lang="de">' in german
    assert "04.12.2026 16:30" in german  # Berlin is an hour ahead of UTC in December


def test_an_unknown_time_zone_is_refused_and_nothing_changes(owner_client, owner):
    answer = owner_client.post(
        f"{SETTINGS}account/preferences/",
        {"language": "de", "time_zone": "Mars/Olympus"},
        follow=True,
    )

    assert "unknown time zone" in answer.content.decode()
    assert owner.memberships.get().time_zone == ""
