"""The Content pages: briefs and the form for a new one, a brief's versions with their diffs
and posts, angles on demand (htmx), the month's calendar; roles, tenancy, escaping."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from agents.models import Run
from catalog.models import ContentBrief
from tests.agents.conftest import drive
from tests.catalog.test_content_api import brief, draft, post

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_a_viewer_sees_the_briefs_and_the_state_of_each_channel_but_no_form(
    viewer_client, workspace
):
    made = brief(workspace, topic="Linen for commuters", channels=["blog", "social"])
    post(made, draft(made), timezone.now())

    page = viewer_client.get("/w/alice/content/").content.decode()

    assert 'aria-current="page">Content</a>' in page
    assert "Linen for commuters" in page
    assert f'href="/w/alice/content/briefs/{made.pk}/"' in page
    assert "blog en</span>" in page and "social en</span>" in page
    assert "New brief" not in page


def test_an_operator_writes_a_brief_in_the_form_and_lands_on_it(operator_client, workspace):
    page = operator_client.get("/w/alice/content/").content.decode()
    assert "New brief" in page

    response = operator_client.post(
        "/w/alice/content/briefs/",
        {
            "topic": "Linen shirts",
            "channels": ["blog", "social"],
            "languages": "en, es",
            "tone": "brand",
            "research_urls": "https://example.com/linen\nhttps://example.com/flax",
        },
    )

    made = ContentBrief.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/w/alice/content/briefs/{made.pk}/"
    assert (made.channels, made.languages) == (["blog", "social"], ["en", "es"])
    assert made.research_urls == ["https://example.com/linen", "https://example.com/flax"]
    assert Run.objects.get().input == {"brief_id": made.pk}


def test_a_brief_the_form_cannot_take_shows_why_and_creates_nothing(operator_client):
    response = operator_client.post(
        "/w/alice/content/briefs/",
        {
            "topic": "Linen",
            "channels": ["social"],
            "languages": "en",
            "tone": "brand",
            "research_urls": "ftp://example.com/x",
        },
    )

    assert response.status_code == 200
    assert "at most 5 http(s) URLs" in response.content.decode()
    assert not ContentBrief.objects.exists()


def test_a_viewer_cannot_write_a_brief(viewer_client):
    response = viewer_client.post("/w/alice/content/briefs/", {"topic": "x", "channels": ["blog"]})

    assert response.status_code == 403
    assert not ContentBrief.objects.exists()


def test_a_brief_shows_its_versions_newest_first_with_the_diff_and_escapes_model_text(
    viewer_client, workspace
):
    made = brief(workspace, topic=f"Linen {SCRIPT}", status="scheduled")
    draft(made, 1, body=f"Linen dries fast. {SCRIPT}", author_label="content-writer", tier="remote")
    human = draft(
        made,
        2,
        body="Linen dries fast, even uphill.",
        author="human",
        author_label="olivia@shop.example",
        diff=[["equal", "Linen dries "], ["delete", "fast."], ["insert", "fast, even uphill."]],
    )
    post(made, human, timezone.now() + timedelta(days=1), error="will try again: timed out")

    page = viewer_client.get(f"/w/alice/content/briefs/{made.pk}/").content.decode()

    assert SCRIPT not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.index("v2 · edited by olivia@shop.example") < page.index("v1 · content-writer")
    assert "<del>fast.</del><ins>fast, even uphill.</ins>" in page
    assert "To publish" in page and "will try again: timed out" in page
    assert "Give me 5 angles" not in page  # a viewer does not ask


def test_another_workspaces_brief_and_content_pages_are_not_found(
    client, outsider, workspace, other_workspace
):
    mine = brief(workspace)
    client.force_login(outsider)

    assert client.get(f"/w/alice/content/briefs/{mine.pk}/").status_code == 404
    assert client.get("/w/alice/content/").status_code == 404
    theirs = brief(other_workspace)
    assert client.get(f"/w/bob/content/briefs/{mine.pk}/").status_code == 404
    assert client.get(f"/w/bob/content/briefs/{theirs.pk}/").status_code == 200


def test_angles_are_asked_for_by_htmx_and_shown_when_the_writer_is_done_saying_no_model(
    operator_client, workspace, operator
):
    operator_client.post(
        "/w/alice/content/briefs/",
        {"topic": "Linen shirts", "channels": ["social"], "languages": "en", "tone": "brand"},
    )
    made = ContentBrief.objects.get()
    url = f"/w/alice/content/briefs/{made.pk}/ideas/"

    asked = operator_client.post(url, **HTMX).content.decode()

    assert asked.lstrip().startswith('<section id="ideas"')
    assert "thinking of angles" in asked and 'hx-trigger="load delay:1s"' in asked
    drive(Run.objects.get(input__ideate=5))
    shown = operator_client.get(url, **HTMX).content.decode()
    assert "<li>Linen shirts: a beginner&#x27;s guide</li>" in shown
    assert "No model configured for ideas" in shown
    assert "Give me 5 more angles" in shown


def test_the_calendar_puts_each_post_on_its_day_and_links_the_months_around(
    viewer_client, workspace
):
    made = brief(workspace, topic=f"Linen {SCRIPT}")
    at = timezone.make_aware(datetime(2030, 5, 14, 9, 30))
    post(made, draft(made), at, status="published")

    page = viewer_client.get("/w/alice/content/calendar/?month=2030-05").content.decode()

    assert "May 2030" in page
    day = page[page.index('id="day-2030-05-14"') :]
    day = day[: day.index("</td>")]
    assert "09:30" in day and "social en" in day and ">published</span>" in day
    assert "&lt;script&gt;" in day and SCRIPT not in page
    assert 'href="/w/alice/content/calendar/?month=2030-04"' in page
    assert 'href="/w/alice/content/calendar/?month=2030-06"' in page


def test_an_htmx_navigation_gets_only_the_content_partial(viewer_client, workspace):
    page = viewer_client.get("/w/alice/content/calendar/", **HTMX).content.decode()

    assert "<html" not in page and 'id="nav"' in page and "Calendar" in page


def test_the_briefs_page_takes_the_same_queries_however_many_briefs(
    viewer_client, workspace, django_assert_max_num_queries
):
    for number in range(6):
        made = brief(workspace, topic=f"Brief {number}")
        post(made, draft(made), timezone.now())
    with django_assert_max_num_queries(11):
        assert viewer_client.get("/w/alice/content/").status_code == 200
