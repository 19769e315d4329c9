"""Content in Chromium: an operator writes a brief in the form, lands on it, and finds the
brief's scheduled post on its day in the calendar, moving between months in place."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from catalog.models import ContentBrief
from tests.browser.test_shell import _log_in
from tests.catalog.test_content_api import brief, draft, post

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_writes_a_brief_and_finds_its_post_in_the_calendar(
    page, web_server, operator, workspace
):
    _log_in(page, web_server, "olivia@shop.example")
    page.goto(f"{web_server}/w/alice/content/")
    page.get_by_text("New brief").click()
    page.get_by_label("Topic").fill("Caring for linen <b>in summer</b>")
    page.get_by_label("Audience").fill("new customers")
    page.locator("input[name=channels][value=social]").check()
    page.get_by_role("button", name="Start the content writer").click()

    written = ContentBrief.objects.get(workspace=workspace)
    expect(page.locator("h2").first).to_contain_text("Caring for linen <b>in summer</b>")
    assert page.url.endswith(f"/w/alice/content/briefs/{written.pk}/")

    scheduled = brief(workspace, topic="Spring linen")
    at = timezone.make_aware(datetime(2031, 3, 9, 9, 0))
    post(scheduled, draft(scheduled), at)
    page.goto(f"{web_server}/w/alice/content/calendar/?month=2031-02")
    expect(page.locator("nav.month h2")).to_have_text("February 2031")
    page.get_by_role("link", name="Next month →").click()
    expect(page.locator("nav.month h2")).to_have_text("March 2031")
    day = page.locator("#day-2031-03-09")
    expect(day).to_contain_text("09:00")
    expect(day).to_contain_text("Spring linen")
    assert page.url.endswith("?month=2031-03")
