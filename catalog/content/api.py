"""The content API: briefs (with their drafts' versions, posts and the state of each channel),
ideation, and the calendar of posts. Thin handlers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.http import Http404
from django.utils import timezone
from ninja import Query, Router, Status
from ninja.errors import HttpError

from aios_site.accounts.auth import request_workspace
from aios_site.accounts.models import Role
from aios_site.paging import offset_param
from catalog.content import selectors, services
from catalog.content.schemas import BriefDetailOut, BriefIn, BriefOut, IdeasOut, PostOut
from catalog.models import ContentBrief

router = Router(tags=["content"])
MAX_RANGE_DAYS = 366


def _brief(membership, brief_id: int) -> ContentBrief:
    brief = selectors.brief_get(workspace_id=membership.workspace_id, brief_id=brief_id)
    if brief is None:
        raise Http404("No such brief.")
    return brief


@router.post("/briefs", response={201: BriefDetailOut})
def brief_create(request, body: BriefIn):
    """A brief (operators): the content writer starts researching and drafting it."""
    membership = request_workspace(request, role=Role.OPERATOR)
    brief = services.brief_create(
        workspace=membership.workspace, user=membership.user, **body.dict()
    )
    return Status(201, _brief(membership, brief.pk))


@router.get("/briefs", response=list[BriefOut])
def brief_list(request, limit: int = Query(50, ge=1, le=200), offset: int = offset_param()):
    """Newest first, each with the state of every channel and language."""
    membership = request_workspace(request)
    return selectors.brief_list(workspace_id=membership.workspace_id)[offset : offset + limit]


@router.get("/briefs/{int:brief_id}", response=BriefDetailOut)
def brief_detail(request, brief_id: int):
    """The brief, every version of its drafts (with the diff from the one before) and its
    scheduled posts."""
    return _brief(request_workspace(request), brief_id)


@router.post("/briefs/{int:brief_id}/ideas", response={202: IdeasOut})
def brief_ideas_start(request, brief_id: int):
    """Asks the content writer for angles (operators); GET the same path for them."""
    membership = request_workspace(request, role=Role.OPERATOR)
    services.brief_ideate(brief=_brief(membership, brief_id), user=membership.user)
    return Status(202, _ideas(_brief(membership, brief_id)))


@router.get("/briefs/{int:brief_id}/ideas", response=IdeasOut)
def brief_ideas(request, brief_id: int):
    ideas = _ideas(_brief(request_workspace(request), brief_id))
    if ideas is None:
        raise Http404("No angles asked for yet.")
    return ideas


def _ideas(brief: ContentBrief) -> dict | None:
    found = selectors.brief_ideas(brief=brief)
    if found is None:
        return None
    return {**found, "run_id": found["run"].pk}


@router.get("/posts", response=list[PostOut])
def post_list(
    request,
    start: date | datetime | None = Query(None, alias="from"),
    end: date | datetime | None = Query(None, alias="to"),
):
    """The calendar: posts to publish (or published) from `from` up to `to` (dates or
    times; a date `to` includes its day). Default: this month."""
    membership = request_workspace(request)
    try:
        begin, finish = _range(start, end)
    except OverflowError as error:
        raise HttpError(400, "the range must lie within the years 1 to 9999") from error
    return selectors.post_list(workspace_id=membership.workspace_id, start=begin, end=finish)


def _range(start, end) -> tuple[datetime, datetime]:
    if start is None and end is None:
        return selectors.month_bounds(timezone.localdate())
    begin = _moment(start) if start is not None else _moment(end) - timedelta(days=31)
    finish = _moment(end, next_day=True) if end is not None else begin + timedelta(days=31)
    if finish <= begin:
        raise HttpError(400, "`to` must come after `from`")
    if finish - begin > timedelta(days=MAX_RANGE_DAYS):
        raise HttpError(400, f"at most {MAX_RANGE_DAYS} days at a time")
    return begin, finish


def _moment(value: date | datetime, *, next_day: bool = False) -> datetime:
    if isinstance(value, datetime):
        aware = value if timezone.is_aware(value) else timezone.make_aware(value)
        return aware.astimezone(UTC)  # PostgreSQL takes offsets up to 15:59 only
    day = value + timedelta(days=1) if next_day else value
    return timezone.make_aware(datetime.combine(day, time.min))
