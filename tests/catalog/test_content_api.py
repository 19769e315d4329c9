"""The content API: creating briefs (validation, roles), reading them with their versions and
posts, the calendar, ideation; another workspace's briefs and posts do not exist here."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from agents.models import Agent, Run
from catalog.models import ContentBrief, ContentDraft, ScheduledPost
from memory.selectors import memory_current
from tests.memory.test_api import Api

pytestmark = pytest.mark.django_db

BRIEF = {
    "topic": "Linen shirts for cycling to work",
    "audience": "commuters",
    "channels": ["blog", "social"],
    "languages": ["en", "es"],
}


def brief(workspace, **fields) -> ContentBrief:
    fields = {"topic": "Linen", "channels": ["social"], "languages": ["en"], **fields}
    return ContentBrief.objects.create(workspace=workspace, **fields)


def draft(made: ContentBrief, version: int = 1, **fields) -> ContentDraft:
    fields = {
        "channel": "social",
        "language": "en",
        "body": f"v{version}",
        "author": "agent",
        **fields,
    }
    return ContentDraft.objects.create(brief=made, version=version, **fields)


def post(made: ContentBrief, kept: ContentDraft, publish_at: datetime, **fields) -> ScheduledPost:
    return ScheduledPost.objects.create(
        workspace_id=made.workspace_id,
        brief=made,
        channel=kept.channel,
        language=kept.language,
        draft=kept,
        publish_at=publish_at,
        **fields,
    )


@pytest.fixture
def operator_api(client, operator):
    return Api(client, operator)


@pytest.fixture
def viewer_api(client, viewer):
    return Api(client, viewer)


# -- creating ---------------------------------------------------------------------------------


def test_an_operator_creates_a_brief_which_starts_the_content_writer_and_is_remembered(
    operator_api, workspace
):
    response = operator_api.send("post", "/briefs", {**BRIEF, "due_at": "2030-05-01T09:00:00Z"})

    assert response.status_code == 201
    body = response.json()
    made = ContentBrief.objects.get()
    run = Run.objects.get()
    assert body == {
        "id": made.pk,
        "topic": "Linen shirts for cycling to work",
        "audience": "commuters",
        "channels": ["blog", "social"],
        "tone": "brand",
        "due_at": "2030-05-01T09:00:00Z",
        "languages": ["en", "es"],
        "research_urls": [],
        "status": "drafting",
        "status_reason": "",
        "run_id": run.pk,
        "created_by": "olivia@shop.example",
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
        "outputs": [
            {
                "channel": channel,
                "language": language,
                "status": "drafting",
                "version": None,
                "post_id": None,
                "publish_at": None,
                "error": "",
            }
            for channel in ("blog", "social")
            for language in ("en", "es")
        ],
        "drafts": [],
        "posts": [],
    }
    writer = Agent.objects.get(workspace=workspace, slug="content-writer")
    assert (run.agent, run.input) == (writer, {"brief_id": made.pk})
    fact = memory_current(workspace_id=workspace.pk, namespace="briefs", key=f"brief-{made.pk}")
    assert fact.kind == "fact" and fact.content.startswith("Brief: Linen shirts for cycling")


def test_a_second_brief_reuses_the_content_writer(operator_api, workspace):
    operator_api.send("post", "/briefs", BRIEF)
    operator_api.send("post", "/briefs", {**BRIEF, "topic": "Wool socks"})

    assert Agent.objects.filter(workspace=workspace, slug="content-writer").count() == 1
    assert Run.objects.count() == 2


@pytest.mark.parametrize(
    ("change", "status", "detail"),
    [
        ({"channels": ["tiktok"]}, 422, None),
        ({"channels": []}, 422, None),
        ({"topic": ""}, 422, None),
        ({"research_urls": ["file:///etc/passwd"]}, 400, "research_urls: at most 5 http(s) URLs"),
        ({"languages": ["english!"]}, 400, "languages: 1 to 6 codes such as en, es, pt-BR"),
        ({"tone": "brand voice"}, 400, "tone: a memory namespace such as brand"),
    ],
)
def test_a_brief_that_cannot_be_written_is_refused_with_the_reason(
    operator_api, change, status, detail
):
    response = operator_api.send("post", "/briefs", {**BRIEF, **change})

    assert response.status_code == status
    assert "detail" in response.json()
    if detail:
        assert response.json()["detail"].startswith(detail)
    assert not ContentBrief.objects.exists()


def test_a_viewer_reads_briefs_but_cannot_create_one(viewer_api, workspace):
    brief(workspace)

    assert viewer_api.send("post", "/briefs", BRIEF).status_code == 403
    assert len(viewer_api.get("/briefs").json()) == 1
    assert ContentBrief.objects.count() == 1


# -- reading ----------------------------------------------------------------------------------


def test_a_brief_shows_every_version_its_diff_and_the_state_of_each_channel(viewer_api, workspace):
    made = brief(workspace, channels=["blog", "social"], status="scheduled")
    agent = draft(made, 1, body="Linen dries fast.")
    human = draft(
        made,
        2,
        body="Linen dries fast, even uphill.",
        author="human",
        diff=[["equal", "Linen dries "], ["insert", "fast, even uphill."]],
    )
    at = timezone.now() + timedelta(days=1)
    scheduled = post(made, human, at)

    body = viewer_api.get(f"/briefs/{made.pk}").json()

    assert [(d["version"], d["author"], d["body"]) for d in body["drafts"]] == [
        (1, "agent", "Linen dries fast."),
        (2, "human", "Linen dries fast, even uphill."),
    ]
    assert body["drafts"][1]["diff"] == [
        ["equal", "Linen dries "],
        ["insert", "fast, even uphill."],
    ]
    assert body["drafts"][0]["id"] == agent.pk
    assert [(p["id"], p["version"], p["status"]) for p in body["posts"]] == [
        (scheduled.pk, 2, "scheduled")
    ]
    assert [(o["channel"], o["status"], o["version"], o["post_id"]) for o in body["outputs"]] == [
        ("blog", "scheduled", None, None),
        ("social", "scheduled", 2, scheduled.pk),
    ]


def test_another_workspaces_brief_is_not_found_and_not_listed(
    client, outsider, workspace, other_workspace
):
    mine, theirs = brief(workspace), brief(other_workspace, topic="Theirs")
    api = Api(client, outsider)

    assert api.get(f"/briefs/{mine.pk}").status_code == 404
    assert api.send("post", f"/briefs/{mine.pk}/ideas").status_code == 404
    assert [b["id"] for b in api.get("/briefs").json()] == [theirs.pk]


def test_listing_briefs_takes_the_same_queries_however_many_there_are(
    viewer_api, workspace, django_assert_max_num_queries
):
    for number in range(5):
        made = brief(workspace, topic=f"Brief {number}")
        post(made, draft(made), timezone.now())
    with django_assert_max_num_queries(8):
        assert len(viewer_api.get("/briefs").json()) == 5


# -- the calendar -----------------------------------------------------------------------------


def test_the_calendar_lists_the_posts_between_two_dates_soonest_first(
    viewer_api, workspace, other_workspace
):
    made = brief(workspace)
    kept = draft(made)
    may = timezone.make_aware(datetime(2030, 5, 10, 9))
    late = post(made, kept, may + timedelta(days=5), status="published")
    early = post(made, kept, may)
    post(made, kept, may + timedelta(days=40))  # June
    theirs = brief(other_workspace)
    post(theirs, draft(theirs), may)

    listed = viewer_api.get("/posts", **{"from": "2030-05-01", "to": "2030-05-31"}).json()

    assert [(p["id"], p["status"]) for p in listed] == [
        (early.pk, "scheduled"),
        (late.pk, "published"),
    ]
    assert listed[0]["topic"] == "Linen" and listed[0]["version"] == 1


def test_a_calendar_range_backwards_or_too_long_is_a_400(viewer_api):
    backwards = viewer_api.get("/posts", **{"from": "2030-05-02", "to": "2030-05-01"})
    too_long = viewer_api.get("/posts", **{"from": "2030-01-01", "to": "2032-01-01"})

    assert backwards.status_code == 400
    assert backwards.json() == {"detail": "`to` must come after `from`"}
    assert too_long.status_code == 400


# -- ideation ---------------------------------------------------------------------------------


def test_an_operator_asks_for_angles_and_reads_them_when_the_writer_is_done(
    operator_api, viewer_api, workspace
):
    made_id = operator_api.send("post", "/briefs", BRIEF).json()["id"]

    started = operator_api.send("post", f"/briefs/{made_id}/ideas")
    again = operator_api.send("post", f"/briefs/{made_id}/ideas")

    assert started.status_code == 202
    assert started.json()["status"] == "queued" and started.json()["ideas"] == []
    assert again.json()["run_id"] == started.json()["run_id"]  # one run, not two
    assert viewer_api.send("post", f"/briefs/{made_id}/ideas").status_code == 403
    from tests.agents.conftest import drive

    drive(Run.objects.get(pk=started.json()["run_id"]))
    ideas = viewer_api.get(f"/briefs/{made_id}/ideas").json()
    assert ideas["status"] == "succeeded" and ideas["tier"] == "template"
    assert ideas["ideas"][4] == "Linen shirts for cycling to work in one minute"
