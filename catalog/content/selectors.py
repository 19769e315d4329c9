"""Content reads, scoped to a workspace: briefs with the state of each channel, their drafts'
versions and posts, the ideas of the last ideation, the calendar."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from agents.models import ACTIVE_STATUSES, Run
from catalog.content.services import IDEAS, WRITER, brief_outputs
from catalog.models import BriefStatus, ContentBrief, ContentDraft, PostStatus, ScheduledPost


def brief_list(*, workspace_id: int) -> QuerySet[ContentBrief]:
    posts = ScheduledPost.objects.select_related("draft").order_by("publish_at", "pk")
    return (
        ContentBrief.objects.filter(workspace_id=workspace_id)
        .select_related("created_by")
        .prefetch_related(
            Prefetch("posts", queryset=posts),
            Prefetch("drafts", queryset=ContentDraft.objects.order_by("version")),
        )
    )


def brief_get(*, workspace_id: int, brief_id: int) -> ContentBrief | None:
    return brief_list(workspace_id=workspace_id).filter(pk=brief_id).first()


def brief_names(workspace_id: int, references: list[str]) -> dict[str, str]:
    """Board cards about `brief:N` are named by the brief's topic."""
    numbers = [int(r) for r in references if r.isdigit()]
    briefs = ContentBrief.objects.filter(workspace_id=workspace_id, pk__in=numbers)
    return {str(pk): topic for pk, topic in briefs.values_list("pk", "topic")}


@dataclass
class Output:
    """One channel in one language of a brief: its versions, its post, where it stands."""

    channel: str
    language: str
    status: str
    drafts: list[ContentDraft] = field(default_factory=list)
    post: ScheduledPost | None = None

    @property
    def latest(self) -> ContentDraft | None:
        return self.drafts[-1] if self.drafts else None


def brief_outputs_of(brief: ContentBrief) -> list[Output]:
    """Per channel and language (from the prefetched drafts and posts): the versions, the
    live post, and a status — the post's, else `approved` once drafts are kept, else the
    brief's own (drafting, in_review, rejected …)."""
    outputs = []
    for channel, language in brief_outputs(brief):
        drafts = [d for d in brief.drafts.all() if (d.channel, d.language) == (channel, language)]
        posts = [p for p in brief.posts.all() if (p.channel, p.language) == (channel, language)]
        live = [p for p in posts if p.status != PostStatus.CANCELLED]
        post = live[-1] if live else (posts[-1] if posts else None)
        if post is not None:
            status = post.status
        elif drafts and brief.status != BriefStatus.REJECTED:
            status = BriefStatus.APPROVED
        else:
            status = brief.status
        outputs.append(Output(channel, language, status, drafts, post))
    return outputs


def brief_ideas(*, brief: ContentBrief) -> dict[str, Any] | None:
    """The last ideation on the brief: running, or its ideas and what wrote them."""
    run = (
        Run.objects.filter(
            workspace_id=brief.workspace_id,
            agent__slug=WRITER,
            input__brief_id=brief.pk,
            input__ideate=IDEAS,
        )
        .order_by("-created_at", "-pk")
        .first()
    )
    if run is None:
        return None
    outcome = run.outcome or {}
    return {
        "run": run,
        "active": run.status in ACTIVE_STATUSES,
        "status": run.status,
        "ideas": outcome.get("ideas") or [],
        "tier": outcome.get("tier", ""),
        "model": outcome.get("model", ""),
        "error": run.error or _waiting(run),
    }


def _waiting(run: Run) -> str:
    waiting = run.waiting_for or {}
    return waiting.get("question", "") if waiting.get("kind") != "proposal" else ""


# -- the calendar --------------------------------------------------------------------------------


def post_list(*, workspace_id: int, start: datetime, end: datetime) -> QuerySet[ScheduledPost]:
    """Posts to publish (or published) from `start` up to `end`, soonest first."""
    return (
        ScheduledPost.objects.filter(
            workspace_id=workspace_id, publish_at__gte=start, publish_at__lt=end
        )
        .select_related("brief", "draft")
        .order_by("publish_at", "pk")
    )


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The first instant of the month and of the next, in the site's time zone."""
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    start = timezone.make_aware(datetime(first.year, first.month, 1))
    return start, timezone.make_aware(datetime(following.year, following.month, 1))


def month_grid(*, workspace_id: int, month: date) -> list[list[dict[str, Any]]]:
    """Weeks (Monday first) of days, each with the posts of that day; days outside the month
    are there to fill the weeks, marked so."""
    start, end = month_bounds(month)
    by_day: dict[date, list[ScheduledPost]] = {}
    for post in post_list(workspace_id=workspace_id, start=start, end=end):
        by_day.setdefault(timezone.localtime(post.publish_at).date(), []).append(post)
    weeks = calendar.Calendar(firstweekday=0).monthdatescalendar(month.year, month.month)
    return [
        [
            {"date": day, "in_month": day.month == month.month, "posts": by_day.get(day, [])}
            for day in week
        ]
        for week in weeks
    ]
