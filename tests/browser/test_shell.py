from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from playwright.sync_api import expect

from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _log_in(page, web_server, email: str) -> None:
    # The server runs production settings, whose hashers do not include the tests' fast one.
    user = get_user_model().objects.get(username=email)
    user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    user.save(update_fields=["password"])
    page.goto(f"{web_server}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_an_owner_logs_in_sees_live_status_and_navigates_without_reloading(
    page, web_server, owner, tmp_path
):
    _log_in(page, web_server, "alice@shop.example")

    expect(page).to_have_url(f"{web_server}/w/alice/board/")
    expect(page.get_by_role("heading", name="Board")).to_be_visible()
    # The websocket was accepted: session auth and origin check passed, the server pushed this.
    expect(page.locator("#live-status")).to_have_text("● live")

    page.get_by_role("link", name="Runs").click()
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    expect(page).to_have_url(f"{web_server}/w/alice/runs/")
    expect(page.locator("nav a[aria-current=page]")).to_have_text("Runs")
    expect(page.locator("#live-status")).to_have_text("● live")  # no reload dropped the socket
    page.screenshot(path=str(tmp_path / "runs.png"))


def test_an_htmx_form_creates_and_revokes_a_token_with_csrf_from_the_body(page, web_server, owner):
    _log_in(page, web_server, "alice@shop.example")
    page.get_by_role("link", name="Settings").click()

    page.get_by_label("Name").fill("store sync")
    page.get_by_role("button", name="Create token").click()

    expect(page.locator("#new-token")).to_have_text(re.compile(r"^aios_"))
    expect(page.locator("#tokens tbody")).to_contain_text("store sync")
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator("#tokens tbody")).to_have_text("No tokens.")


def test_an_outsider_gets_a_404_page_for_another_workspace(page, web_server, owner, outsider):
    _log_in(page, web_server, "bob@shop.example")

    response = page.goto(f"{web_server}/w/alice/board/")

    assert response.status == 404
    expect(page.get_by_role("heading", name="404")).to_be_visible()


def test_logging_out_returns_to_the_login_page(page, web_server, owner):
    _log_in(page, web_server, "alice@shop.example")

    page.get_by_role("button", name="Log out").click()

    expect(page).to_have_url(re.compile(r"/login/$"))
    page.goto(f"{web_server}/w/alice/board/")
    expect(page).to_have_url(re.compile(r"/login/\?next="))
