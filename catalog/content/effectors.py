"""The content writer's effectors: keeping the drafts a person approved (with their edits), and
scheduling them. Neither reaches outside AIOS; publishing at the time goes through
`core.webhook` (catalog/content/services.py), so the shop owner decides what goes out and
when before anything does."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import formats, timezone

from agents.pipelines import PermanentError
from aios_site.humanize import language_name
from approvals.edits import Edit
from approvals.effectors import Effector, register, require_field
from catalog.checks import failed
from catalog.content import services
from catalog.content.formats import FORMATS, payload_key, problems
from catalog.content.tools import brief_of
from catalog.drafts import check_rows, failed_drafts
from catalog.models import ContentDraft


def _brief(workspace, payload: dict[str, Any]):
    return brief_of(workspace.pk, require_field(payload, "brief_id", int))


def _latest(brief, channel: str, language: str) -> ContentDraft | None:
    drafts = ContentDraft.objects.filter(brief=brief, channel=channel, language=language)
    return drafts.order_by("-version").first()


@register
class AcceptDraft(Effector):
    """A brief's drafts, one per channel and language, as `<channel>.<language>.<field>`
    (`blog.en.title`, `newsletter.en.subject`, `social.en.body`): each can be edited on the
    board before approving; an edit over a channel's limit is refused."""

    name = "content.accept_draft"
    label = "Content drafts"

    def headline(self, payload, *, name, facts) -> str:
        return f"Accept the drafts for “{name}”" if name else "Accept content drafts"

    replaces_minutes = 40.0

    def validate(self, payload, *, workspace) -> None:
        brief = _brief(workspace, payload)
        wrong = []
        for channel, language in services.brief_outputs(brief):
            title, body = services.draft_fields(payload, channel, language)
            wrong += [f"{channel} ({language}): {p}" for p in problems(channel, title, body)]
        if wrong:
            raise PermanentError("; ".join(wrong))

    def risk(self, payload) -> str:
        return "medium" if payload.get("notes") else "low"

    def facts(self, payload, *, workspace) -> dict[str, Any]:
        tiers = payload.get("drafted_by") or {}
        return {
            "brief_id": payload["brief_id"],
            "drafts": len(tiers),
            "tier": "template" if "template" in tiers.values() else "model",
            # A post whose draft failed a check, or stands in for drafts that did, never goes
            # out by a rule (approvals.policy.unreviewable).
            "checks_failed": len(failed(payload.get("checks") or [])),
            "failed_drafts": len(failed_drafts(payload)),
        }

    def edits(self, payload, *, workspace, facts=None) -> list[Edit]:
        edits = []
        for key, value in payload.items():  # `blog.en.title`: one per draft field
            channel, _, rest = key.partition(".")
            language, _, field = rest.partition(".")
            if channel in FORMATS and field in FORMATS[channel].fields():
                label = f"{FORMATS[channel].label} in {language_name(language)}: {field}"
                edits.append(Edit((key,), "text" if field == "body" else "line", label, value))
        return edits

    def preview(self, payload, *, workspace) -> list[dict[str, Any]]:
        brief, changes = _brief(workspace, payload), []
        for channel, language in services.brief_outputs(brief):
            before = _latest(brief, channel, language)
            for field in FORMATS[channel].fields():
                old = None
                if before is not None:
                    old = before.body if field == "body" else before.title
                changes.append(
                    {
                        "field": f"{channel} ({language}) {field}",
                        "before": old,
                        "after": payload.get(payload_key(channel, language, field), ""),
                    }
                )
        changes += [
            {
                "field": f"{n['draft']} {n['field']}: {n['check']}",
                "before": None,
                "after": n["detail"],
            }
            for n in payload.get("notes") or []
        ]
        return changes + check_rows(payload)

    def commit(self, payload, idempotency_key, *, workspace, proposal) -> dict[str, Any]:
        brief = _brief(workspace, payload)
        return {"drafts": services.drafts_accept(brief=brief, proposal=proposal, payload=payload)}


def _publish_at(payload: dict[str, Any]) -> datetime:
    text = require_field(payload, "publish_at", str)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise PermanentError(
            "publish_at is a date and time such as 2026-05-01T09:00:00+00:00"
        ) from error
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def _drafts(brief, payload: dict[str, Any]) -> list[ContentDraft]:
    posts = payload.get("posts")
    if not isinstance(posts, list) or not posts:
        raise PermanentError("the payload needs `posts`: [{channel, language, draft_id}]")
    ids = [post.get("draft_id") for post in posts if isinstance(post, dict)]
    drafts = {d.pk: d for d in ContentDraft.objects.filter(brief=brief, pk__in=ids)}
    if len(ids) != len(posts) or set(ids) - set(drafts):
        raise PermanentError(f"every post names a draft of brief {brief.pk}")
    if len({(d.channel, d.language) for d in drafts.values()}) != len(ids):
        raise PermanentError("one post per channel and language")
    return [drafts[i] for i in ids]


@register
class SchedulePost(Effector):
    """Schedules approved draft versions to be published at `publish_at` (editable on the
    board). Undo cancels the posts that have not gone out yet."""

    name = "content.schedule_post"
    label = "Scheduled posts"

    def headline(self, payload, *, name, facts) -> str:
        try:
            when = formats.date_format(
                timezone.localtime(_publish_at(payload)), "SHORT_DATETIME_FORMAT"
            )
        except PermanentError:
            when = "a date to choose"
        return f"Publish “{name or 'the brief'}” on {when}"

    replaces_minutes = 5.0

    def validate(self, payload, *, workspace) -> None:
        brief = _brief(workspace, payload)
        _publish_at(payload)
        _drafts(brief, payload)

    def risk(self, payload) -> str:
        return "medium"

    def edits(self, payload, *, workspace, facts=None) -> list[Edit]:
        return [Edit(("publish_at",), "datetime", "Publish at", payload.get("publish_at"))]

    def preview(self, payload, *, workspace) -> list[dict[str, Any]]:
        from approvals.models import WebhookEndpoint

        brief, when = _brief(workspace, payload), _publish_at(payload)
        shown = f"{timezone.localtime(when):%Y-%m-%d %H:%M %Z}"
        changes: list[dict[str, Any]] = [
            {
                "field": f"{d.channel} ({d.language}) v{d.version}: {d.title or d.body[:60]}",
                "before": None,
                "after": f"published {shown}",
            }
            for d in _drafts(brief, payload)
        ]
        endpoint = WebhookEndpoint.objects.filter(
            workspace=workspace, name=services.PUBLISH_ENDPOINT
        ).first()
        changes.append(
            {
                "field": "publishing endpoint",
                "before": None,
                "after": endpoint.url
                if endpoint
                else f'none: add a webhook endpoint named "{services.PUBLISH_ENDPOINT}" '
                "before then, or the posts fail",
            }
        )
        return changes

    def commit(self, payload, idempotency_key, *, workspace, proposal) -> dict[str, Any]:
        brief = _brief(workspace, payload)
        posts = services.posts_schedule(
            brief=brief,
            proposal=proposal,
            publish_at=_publish_at(payload),
            drafts=_drafts(brief, payload),
        )
        return {"posts": [post.pk for post in posts], "publish_at": payload["publish_at"]}

    def undo(self, result, *, workspace, proposal) -> dict[str, Any]:
        return {"cancelled": services.posts_cancel(proposal=proposal)}
