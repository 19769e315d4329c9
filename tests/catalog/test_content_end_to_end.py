"""The solopreneur's content journey for real: a brief over the API of a live server, a real
Celery worker running the content writer against the local OpenAI-compatible server, the
owner approving the drafts with an edit and then the schedule, and the publish task (its
clock moved past the time) sent twice to the worker: one POST per post at the receiver."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import JournalEntry, Run
from aios_site.accounts.services import token_create
from approvals.audit import Actor
from approvals.models import Proposal
from approvals.services import proposal_approve, webhook_endpoint_save
from catalog.models import ContentBrief, ContentDraft, ScheduledPost
from catalog.tasks import content_publish_due
from memory.selectors import memory_current
from tests.agents.processes import start_worker
from tests.catalog.test_content_pipeline import BLOG, OUTLINE, PAGE, Pages
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.receiver import Receiver
from tests.helpers import default_provider, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def studio(workspace, owner, live_server):
    """A model provider, a research page, a publishing endpoint and a worker."""
    model, site, receiver = FakeOpenAI(), Pages({"/linen": (200, PAGE)}), Receiver()
    default_provider(workspace, model.base_url)
    webhook_endpoint_save(
        workspace=workspace,
        name="publish",
        url=receiver.url,
        secret="publish-secret-0123",
        actor=Actor.system("test"),
    )
    membership = owner.memberships.get(workspace=workspace)
    _, token = token_create(membership=membership, name="studio")
    worker = start_worker(concurrency=2)
    yield model, site, receiver, membership, token
    worker.stop()
    receiver.close()
    site.close()
    model.close()


def _post(url: str, token: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def _pending(effector: str) -> Proposal:
    wait_until(
        lambda: Proposal.objects.filter(effector=effector, status="pending").exists(), timeout=60
    )
    return Proposal.objects.get(effector=effector, status="pending")


def test_a_brief_becomes_reviewed_scheduled_and_published_posts_each_sent_once(
    studio, live_server, workspace
):
    model, site, receiver, membership, token = studio
    model.script(
        Reply(OUTLINE),
        Reply(BLOG),
        Reply("Linen dries fast. #cycling"),
    )
    due = (timezone.now() + timedelta(days=3)).replace(microsecond=0)

    status, created = _post(
        f"{live_server.url}/api/v1/briefs",
        token,
        {
            "topic": "Linen shirts for cycling to work",
            "audience": "commuters",
            "channels": ["blog", "social"],
            "languages": ["en"],
            "due_at": due.isoformat(),
            "research_urls": [f"{site.url}/linen"],
        },
    )
    assert status == 201 and created["status"] == "drafting"

    review = _pending("content.accept_draft")
    assert site.requested == ["/linen"]
    assert JournalEntry.objects.filter(run_id=created["run_id"], kind="http").count() == 1
    assert review.payload["blog.en.title"] == "Cool linen for the ride"
    edited = {**review.payload, "social.en.body": "Linen dries fast, even uphill. #cycling"}
    proposal_approve(
        proposal=review, membership=membership, shown_hash=review.payload_hash, payload=edited
    )

    schedule = _pending("content.schedule_post")
    brief = ContentBrief.objects.get(pk=created["id"])
    versions = ContentDraft.objects.filter(brief=brief, channel="social").order_by("version")
    assert [(d.version, d.author) for d in versions] == [(1, "agent"), (2, "human")]
    assert versions[1].diff and ["insert", "fast, even uphill."] in versions[1].diff
    example = memory_current(
        workspace_id=workspace.pk, namespace="posts", key=f"brief-{brief.pk}-social-en"
    )
    assert example.content == "Linen dries fast, even uphill. #cycling"
    assert schedule.payload["publish_at"] == due.isoformat()

    proposal_approve(proposal=schedule, membership=membership, shown_hash=schedule.payload_hash)
    wait_until(lambda: Run.objects.get(pk=created["run_id"]).status == "succeeded", timeout=60)
    posts = ScheduledPost.objects.filter(brief=brief)
    assert sorted(posts.values_list("channel", "status")) == [
        ("blog", "scheduled"),
        ("social", "scheduled"),
    ]

    # Not due yet: nothing goes out.
    content_publish_due.delay((due - timedelta(minutes=5)).isoformat())
    # Due: the task twice, at once, on the worker's two processes.
    later = (due + timedelta(minutes=1)).isoformat()
    content_publish_due.delay(later)
    content_publish_due.delay(later)
    wait_until(lambda: set(posts.values_list("status", flat=True)) == {"published"}, timeout=60)
    content_publish_due(later)  # and once more, here: still nothing twice

    assert ContentBrief.objects.get(pk=brief.pk).status == "published"
    assert len(receiver.requests) == 2
    keys = sorted(r["headers"]["idempotency-key"] for r in receiver.requests)
    assert keys == sorted(post.idempotency_key for post in posts)
    social = json.loads(
        next(r["body"] for r in receiver.requests if b'"channel":"social"' in r["body"])
    )
    assert (social["body"], social["version"]) == ("Linen dries fast, even uphill. #cycling", 2)
