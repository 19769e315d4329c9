from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from aios_site.accounts.models import ApiToken
from aios_site.accounts.services import membership_ensure, token_create
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

SECTIONS = ["board", "runs", "agents", "memory", "catalog", "content", "metrics"]


def test_an_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_a_person_logs_in_with_email_and_password_and_lands_on_the_board(client, owner):
    response = client.post(
        "/login/", {"username": "alice@shop.example", "password": PASSWORD}, follow=True
    )

    assert response.redirect_chain[-1][0] == "/w/alice/board/"
    page = response.content.decode()
    assert "Alice&#x27;s Shop" in page
    for label in ["Board", "Runs", "Agents", "Memory", "Catalog", "Content", "Metrics", "Settings"]:
        assert f">{label}</a>" in page


def test_a_wrong_password_is_refused_with_a_message(client, owner):
    response = client.post("/login/", {"username": "alice@shop.example", "password": "nope"})

    assert response.status_code == 200
    assert "do not match an account" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_logging_out_ends_the_session(owner_client):
    response = owner_client.post("/logout/")

    assert response.status_code == 302
    assert owner_client.get("/w/alice/board/").status_code == 302


def test_switching_workspace_moves_home_to_the_chosen_one(client, owner, other_workspace):
    membership_ensure(workspace=other_workspace, user=owner, role="viewer")
    client.force_login(owner)

    response = client.post("/workspaces/switch/", {"slug": "bob"})

    assert response["Location"] == "/w/bob/board/"
    assert client.get("/")["Location"] == "/w/bob/board/"


def test_switching_to_a_workspace_one_does_not_belong_to_is_404(owner_client, other_workspace):
    assert owner_client.post("/workspaces/switch/", {"slug": "bob"}).status_code == 404


@pytest.mark.parametrize("path", [f"/w/alice/{s}/" for s in [*SECTIONS, "settings"]])
def test_an_outsider_gets_404_on_every_page_of_the_workspace(outsider_client, owner, path):
    assert outsider_client.get(path).status_code == 404


@pytest.mark.parametrize("section", SECTIONS)
def test_every_section_page_renders_for_a_viewer(client, viewer, section):
    client.force_login(viewer)

    response = client.get(f"/w/alice/{section}/")

    assert response.status_code == 200
    assert f'aria-current="page">{section.capitalize()}</a>' in response.content.decode()


def test_an_htmx_navigation_gets_only_the_content_partial(owner_client):
    response = owner_client.get("/w/alice/runs/", HTTP_HX_REQUEST="true")

    page = response.content.decode()
    assert "<h1>Runs</h1>" in page
    assert "<html" not in page and 'id="nav"' in page and 'hx-swap-oob="true"' in page


def test_the_settings_page_lists_members_and_the_owner_sees_every_token(owner_client, operator):
    token_create(membership=operator.memberships.get(), name="olivia's sync")

    page = owner_client.get("/w/alice/settings/").content.decode()

    assert "olivia@shop.example" in page and "olivia&#x27;s sync" in page


def _csrf_from_page(client: Client, path: str) -> str:
    page = client.get(path).content.decode()
    headers = re.search(r"<body hx-headers='([^']+)'", page).group(1)
    return json.loads(headers)["X-CSRFToken"]


def test_an_htmx_post_without_the_csrf_header_is_refused(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    client.get("/w/alice/settings/")

    response = client.post("/w/alice/settings/tokens/", {"name": "x"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 403
    assert not ApiToken.objects.exists()


def test_an_htmx_post_with_the_header_from_body_creates_a_token_once(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    csrf = _csrf_from_page(client, "/w/alice/settings/")

    response = client.post(
        "/w/alice/settings/tokens/",
        {"name": "shop sync"},
        HTTP_HX_REQUEST="true",
        HTTP_X_CSRFTOKEN=csrf,
    )

    assert response.status_code == 200
    fragment = response.content.decode()
    assert fragment.startswith('\n<section id="tokens">') or '<section id="tokens">' in fragment
    raw = re.search(r'<code id="new-token">([^<]+)</code>', fragment).group(1)
    token = ApiToken.objects.get()
    assert token.name == "shop sync" and token.prefix == raw[:12]


def test_revoking_from_settings_removes_the_token_from_the_list(owner_client, owner):
    token = token_create(membership=owner.memberships.get(), name="old")[0]

    response = owner_client.post(
        f"/w/alice/settings/tokens/{token.pk}/revoke/", HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert "No tokens." in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_model_and_user_text_is_escaped_on_pages(owner_client, owner):
    token_create(membership=owner.memberships.get(), name="<script>alert(1)</script>")

    page = owner_client.get("/w/alice/settings/").content.decode()

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_static_files_are_served_by_the_app(client):
    response = client.get("/static/vendor/htmx/htmx-2.0.11.min.js")

    assert response.status_code == 200
    assert b"htmx" in b"".join(response.streaming_content)


def test_a_person_without_a_workspace_is_told_so(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="nobody@shop.example"))

    response = client.get("/")

    assert response.status_code == 200
    assert "not a member of any workspace" in response.content.decode()
