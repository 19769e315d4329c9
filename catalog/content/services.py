"""Content writes: briefs (and the content writer they start), ideation, the drafts a person
approved, schedules, and publishing the posts that are due.

A brief is also memory's `briefs/brief-N` fact: the canonical brief the writer recalls. The
versions a person edited go to memory's `posts` namespace, where the next drafts find them
as examples of what the owner wants. Publishing claims each due post with a conditional
UPDATE, so two workers (or the same task run twice) publish it once; the POST carries an
idempotency key derived from the post's id, so a retry after a lost answer changes nothing
at the receiver either.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from agents.models import Agent, Run, Trigger
from aios_site.chaos import chaos_point
from aios_site.core import lease
from aios_site.core.errors import LeaseLost, PermanentError, describe, is_transient
from aios_site.core.renewer import renewer
from approvals.audit import Actor, audit_record
from catalog.content.formats import CHANNELS, FORMATS, payload_key
from catalog.models import (
    Author,
    BriefStatus,
    ContentBrief,
    ContentDraft,
    PostStatus,
    ScheduledPost,
)

WRITER = "content-writer"
CONTENT_AGENT = {
    "slug": WRITER,
    "name": "Content writer (briefs to posts)",
    "pipeline": "content.post",
    "allowed_effectors": ["content.accept_draft", "content.schedule_post"],
}
PUBLISH_ENDPOINT = "publish"  # the workspace's webhook endpoint that receives posts
MAX_URLS = 5
MAX_LANGUAGES = 6
IDEAS = 5
PUBLISH_ATTEMPTS = 5  # a post whose endpoint stays unreachable fails after this many
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$", re.I)
NAMESPACE = re.compile(r"^[-a-zA-Z0-9_]{1,50}$")


# -- the writer -------------------------------------------------------------------------------


def content_agent_ensure(*, workspace, actor: Actor) -> Agent:
    """The workspace's content writer, created with its first brief."""
    from agents.services import agent_create

    agent = Agent.objects.filter(workspace=workspace, slug=WRITER).first()
    return agent or agent_create(workspace=workspace, actor=actor, **CONTENT_AGENT)


def _writer(workspace) -> Agent:
    agent = Agent.objects.filter(workspace=workspace, slug=WRITER).first()
    if agent is None:
        raise PermanentError("this workspace has no content writer (a new brief adds it)")
    if not agent.enabled:
        raise PermanentError("the content writer is disabled: turn it on on the Agents page")
    return agent


# -- briefs -----------------------------------------------------------------------------------


def brief_clean(
    *,
    topic: str,
    audience: str = "",
    channels: list[str],
    tone: str = "brand",
    due_at: datetime | None = None,
    languages: list[str] | None = None,
    research_urls: list[str] | None = None,
) -> dict[str, Any]:
    """The brief's fields, normalised; ValidationError naming every field that is wrong."""
    errors: dict[str, list[str]] = {}
    topic, audience, tone = topic.strip(), audience.strip(), (tone or "brand").strip()
    channels = list(dict.fromkeys(channels or []))
    languages = list(dict.fromkeys(code.strip() for code in languages or ["en"] if code.strip()))
    urls = [url.strip() for url in research_urls or [] if url.strip()]
    if not topic or len(topic) > 200:
        errors["topic"] = ["a topic of 1 to 200 characters"]
    if len(audience) > 200:
        errors["audience"] = ["at most 200 characters"]
    if not channels or set(channels) - set(CHANNELS):
        errors["channels"] = [f"one or more of {', '.join(CHANNELS)}"]
    if not NAMESPACE.match(tone):
        errors["tone"] = ["a memory namespace such as brand (letters, digits, - and _)"]
    bad = [code for code in languages if not LANGUAGE.match(code)]
    if bad or not languages or len(languages) > MAX_LANGUAGES:
        errors["languages"] = [f"1 to {MAX_LANGUAGES} codes such as en, es, pt-BR"]
    if len(urls) > MAX_URLS or not all(_is_web_url(url) for url in urls):
        errors["research_urls"] = [f"at most {MAX_URLS} http(s) URLs"]
    if errors:
        raise ValidationError(errors)
    if due_at is not None and timezone.is_naive(due_at):
        due_at = timezone.make_aware(due_at)
    return {
        "topic": topic,
        "audience": audience,
        "channels": channels,
        "tone": tone,
        "due_at": due_at,
        "languages": [code.lower() for code in languages],
        "research_urls": urls,
    }


def _is_web_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and len(url) <= 500


@transaction.atomic
def brief_create(*, workspace, user, **fields: Any) -> ContentBrief:
    """A brief, its fact in memory, and the content writer's run on it (queued on commit)."""
    from agents.services import run_start
    from memory.services import Source, memory_write

    brief = ContentBrief.objects.create(
        workspace=workspace, created_by=user, **brief_clean(**fields)
    )
    memory_write(
        workspace=workspace,
        namespace="briefs",
        key=brief.memory_key,
        kind="fact",
        content=brief_text(brief),
        metadata={"brief_id": brief.pk, "channels": brief.channels, "languages": brief.languages},
        source=Source.human(user),
        language=brief.languages[0],
    )
    agent = content_agent_ensure(workspace=workspace, actor=Actor.of_user(user))
    brief.run, _ = run_start(
        agent=_writer(workspace),
        input={"brief_id": brief.pk},
        trigger=Trigger.MANUAL,
        trigger_ref=f"brief {brief.pk} ({user.get_username()})",
        idempotency_key=f"content:{brief.pk}",
    )
    brief.save(update_fields=["run"])
    audit_record(
        workspace_id=workspace.pk,
        actor=Actor.of_user(user),
        action="content.brief_create",
        object_type="brief",
        object_id=brief.pk,
        object_label=brief.topic,
        after={**brief_clean_json(brief), "agent": agent.slug, "run": brief.run.pk},
    )
    return brief


def brief_text(brief: ContentBrief) -> str:
    lines = [f"Brief: {brief.topic}"]
    if brief.audience:
        lines.append(f"Audience: {brief.audience}")
    lines.append(f"Channels: {', '.join(brief.channels)}")
    lines.append(f"Languages: {', '.join(brief.languages)}")
    lines.append(f"Brand voice: memory namespace {brief.tone}")
    if brief.due_at:
        lines.append(f"Due: {timezone.localtime(brief.due_at):%Y-%m-%d %H:%M}")
    if brief.research_urls:
        lines.append(f"Research: {' '.join(brief.research_urls)}")
    return "\n".join(lines)


def brief_clean_json(brief: ContentBrief) -> dict[str, Any]:
    return {
        "topic": brief.topic,
        "audience": brief.audience,
        "channels": brief.channels,
        "tone": brief.tone,
        "due_at": brief.due_at.isoformat() if brief.due_at else None,
        "languages": brief.languages,
        "research_urls": brief.research_urls,
    }


def brief_status_set(*, brief: ContentBrief, status: str, reason: str = "") -> None:
    """Moves a brief on; a brief that was published, failed or rejected stays so."""
    final = [BriefStatus.PUBLISHED, BriefStatus.FAILED, BriefStatus.REJECTED]
    ContentBrief.objects.filter(pk=brief.pk).exclude(status__in=final).update(
        status=status, status_reason=reason[:500], updated_at=timezone.now()
    )


def brief_ideate(*, brief: ContentBrief, user) -> tuple[Run, bool]:
    """Angles for the brief, by the content writer on the small model (or its template):
    a run of its own, shown on the brief and never proposed. A run already on it is
    returned (False) instead of paying for a second one."""
    from agents.models import ACTIVE_STATUSES
    from agents.services import run_start

    agent = _writer(brief.workspace)
    active = Run.objects.filter(
        agent=agent, status__in=ACTIVE_STATUSES, input__brief_id=brief.pk, input__ideate=IDEAS
    ).first()
    if active is not None:
        return active, False
    run, _ = run_start(
        agent=agent,
        input={"brief_id": brief.pk, "ideate": IDEAS},
        trigger=Trigger.MANUAL,
        trigger_ref=f"angles for brief {brief.pk} ({user.get_username()})",
    )
    return run, True


# -- what the review and the schedule commit ---------------------------------------------------


@transaction.atomic
def drafts_accept(*, brief: ContentBrief, proposal, payload: dict[str, Any]) -> list[dict]:
    """Keeps the approved drafts: the agent's version of each, and the person's as the next
    version when they edited it (with the word diff); the person's go to memory `posts`.
    Idempotent: a second commit of the same proposal returns what the first kept."""
    kept = ContentDraft.objects.filter(brief=brief, proposal=proposal)
    if kept.exists():
        return [_kept(draft) for draft in _latest_each(kept)]
    tiers = payload.get("drafted_by") or {}
    proposed = proposal.proposed_payload
    result = []
    for channel, language in brief_outputs(brief):
        agent_text = draft_fields(proposed, channel, language)
        agent_draft = _draft_add(
            brief,
            proposal,
            channel,
            language,
            *agent_text,
            author=Author.AGENT,
            label=proposal.agent.slug,
            tier=str(tiers.get(f"{channel}.{language}", "")),
            notes=[
                n for n in payload.get("notes") or [] if n.get("draft") == f"{channel}.{language}"
            ],
        )
        final = agent_draft
        human_text = draft_fields(payload, channel, language)
        if human_text != agent_text:
            final = _draft_add(
                brief,
                proposal,
                channel,
                language,
                *human_text,
                author=Author.HUMAN,
                label=proposal.decided_by.get_username() if proposal.decided_by else "",
                previous=agent_draft,
            )
            _remember(brief, final, proposal)
        result.append(_kept(final))
    brief_status_set(brief=brief, status=BriefStatus.APPROVED)
    return result


def brief_outputs(brief: ContentBrief) -> list[tuple[str, str]]:
    return [(channel, language) for channel in brief.channels for language in brief.languages]


def draft_fields(payload: dict[str, Any], channel: str, language: str) -> tuple[str, str]:
    title_field = FORMATS[channel].title
    title = payload.get(payload_key(channel, language, title_field), "") if title_field else ""
    return str(title).strip(), str(payload.get(payload_key(channel, language, "body"), "")).strip()


def _draft_add(
    brief, proposal, channel, language, title, body, *, author, label, previous=None, **extra
):
    from memory.selectors import word_diff

    latest = (
        ContentDraft.objects.filter(brief=brief, channel=channel, language=language)
        .order_by("-version")
        .first()
    )
    previous = previous or latest  # the diff's base: the latest unless a version is named
    diff = None
    if previous is not None:
        before, after = _as_text(previous.title, previous.body), _as_text(title, body)
        diff = [list(piece) for piece in word_diff(before, after)]
    return ContentDraft.objects.create(
        brief=brief,
        channel=channel,
        language=language,
        version=latest.version + 1 if latest else 1,
        title=title,
        body=body,
        author=author,
        author_label=label[:200],
        diff=diff,
        proposal=proposal,
        **extra,
    )


def _as_text(title: str, body: str) -> str:
    return f"{title}\n\n{body}" if title else body


def _latest_each(drafts) -> list[ContentDraft]:
    latest: dict[tuple[str, str], ContentDraft] = {}
    for draft in drafts.order_by("version"):
        latest[(draft.channel, draft.language)] = draft
    return list(latest.values())


def _kept(draft: ContentDraft) -> dict[str, Any]:
    return {
        "channel": draft.channel,
        "language": draft.language,
        "draft_id": draft.pk,
        "version": draft.version,
        "author": draft.author,
    }


def _remember(brief: ContentBrief, draft: ContentDraft, proposal) -> None:
    """A person's version, as an example the writer recalls for the next briefs."""
    from memory.services import Source, memory_write

    user = proposal.decided_by
    memory_write(
        workspace=brief.workspace,
        namespace="posts",
        key=f"brief-{brief.pk}-{draft.channel}-{draft.language}",
        kind="fact",
        content=_as_text(draft.title, draft.body),
        metadata={
            "brief_id": brief.pk,
            "channel": draft.channel,
            "language": draft.language,
            "version": draft.version,
            "author": "human",
        },
        source=Source.human(user) if user else Source.of_run(proposal.run, proposal.seq),
        language=draft.language,
    )


@transaction.atomic
def posts_schedule(
    *, brief: ContentBrief, proposal, publish_at: datetime, drafts: list[ContentDraft]
) -> list[ScheduledPost]:
    """One scheduled post per approved draft; a second commit finds the ones it made."""
    posts = [
        ScheduledPost.objects.get_or_create(
            proposal=proposal,
            channel=draft.channel,
            language=draft.language,
            defaults={
                "workspace_id": brief.workspace_id,
                "brief": brief,
                "draft": draft,
                "publish_at": publish_at,
            },
        )[0]
        for draft in drafts
    ]
    brief_status_set(brief=brief, status=BriefStatus.SCHEDULED)
    return posts


def posts_cancel(*, proposal) -> int:
    """Takes a schedule back: its posts that have not gone out are cancelled."""
    return ScheduledPost.objects.filter(proposal=proposal, status=PostStatus.SCHEDULED).update(
        status=PostStatus.CANCELLED
    )


def next_free_slot(*, workspace_id: int, after: datetime) -> datetime:
    """The first day after `after` with nothing scheduled, at the publishing hour."""
    local = timezone.localtime(after)
    taken = set(
        timezone.localtime(at).date()
        for at in ScheduledPost.objects.filter(
            workspace_id=workspace_id,
            publish_at__gt=after,
            status__in=[PostStatus.SCHEDULED, PostStatus.PUBLISHING, PostStatus.PUBLISHED],
        ).values_list("publish_at", flat=True)
    )
    day = local.date() + timedelta(days=1)
    while day in taken:
        day += timedelta(days=1)
    slot = datetime(day.year, day.month, day.day, settings.AIOS_CONTENT_PUBLISH_HOUR)
    return timezone.make_aware(slot)


# -- publishing ---------------------------------------------------------------------------------


def _publishing(now: datetime) -> lease.LeaseKind:
    """Publishing a post is leased work: a due post, or one whose publisher let its lease
    run out, is claimed with a fencing token, at most PUBLISH_ATTEMPTS times in all."""
    return lease.LeaseKind(
        name="post publishing",
        model=ScheduledPost,
        seconds=settings.AIOS_LEASE_SECONDS,
        max_attempts=PUBLISH_ATTEMPTS,
        claimable=Q(status=PostStatus.SCHEDULED, publish_at__lte=now)
        | Q(status=PostStatus.PUBLISHING),
        on_exhausted=_publish_gave_up,
    )


def posts_publish_due(*, now: datetime | None = None) -> dict[str, int]:
    """Publishes every post due at `now` (default: the clock), each once; takes over posts
    whose publisher died or was paused mid-publication once their lease is over, and fails
    those that have no attempts left."""
    now = now or timezone.now()
    if timezone.is_naive(now):
        now = timezone.make_aware(now)
    kind = _publishing(now)
    swept = lease.expired_sweep(kind)
    due = ScheduledPost.objects.filter(
        Q(status=PostStatus.SCHEDULED, publish_at__lte=now)
        | Q(status=PostStatus.PUBLISHING, lease_expires_at__lt=Now())
    ).values_list("pk", flat=True)
    counts = {
        "published": swept["found_done"],
        "failed": swept["gave_up"],
        "retrying": 0,
        "skipped": 0,
    }
    for post_id in list(due):
        counts[post_publish(post_id=post_id, now=now)] += 1
    return counts


def post_publish(*, post_id: int, now: datetime) -> str:
    """Claims the post (only one worker can) and POSTs it through `core.webhook`; says
    what became of it: published, failed, retrying, or skipped (someone else has it)."""
    with lease.held(_publishing(now), post_id) as held:
        if held is None or not held.write(status=PostStatus.PUBLISHING):
            return "skipped"
        post = ScheduledPost.objects.select_related("workspace", "brief", "draft", "proposal")
        post = post.get(pk=post_id)
        try:
            result = _send(post)
        except LeaseLost:
            return "skipped"  # taken over while this publisher was paused: it carries on
        except Exception as error:
            if is_transient(error) and held.attempt < PUBLISH_ATTEMPTS:
                _settle(post, held, PostStatus.SCHEDULED, error=f"will try again: {error}")
                return "retrying"
            _settle(post, held, PostStatus.FAILED, error=describe(error))
            return "failed"
        chaos_point("during_effector_commit")  # published, not yet recorded here
        _settle(post, held, PostStatus.PUBLISHED, result=result)
        return "published"


def _publish_gave_up(held: lease.Lease) -> bool:
    """The last publisher died or was paused mid-publication, and no attempts are left. One
    of them may have published it before dying, so the endpoint is asked once more by the
    same Idempotency-Key (a receiver that has it answers without publishing it twice): a
    post found published is recorded so, not as failed."""
    post = ScheduledPost.objects.select_related("workspace", "brief", "draft", "proposal")
    post = post.get(pk=held.pk)
    held.keep_renewed()
    try:
        with lease.acting(held):
            result = _send(post)
    except LeaseLost:
        return True
    except Exception as error:
        last = f" (last error: {post.error})" if post.error else ""
        message = (
            f"gave up after {post.lease_attempts} attempts{last}; asked again, the endpoint "
            f"answered {describe(error)}: an earlier attempt may have published it"
        )
        _settle(post, held, PostStatus.FAILED, error=message, claimable=Q())
        return True
    finally:
        renewer().drop(held.key)
    _settle(post, held, PostStatus.PUBLISHED, result=result, claimable=Q())
    return False


def _send(post: ScheduledPost) -> dict[str, Any]:
    from approvals.effectors import endpoint_post
    from approvals.models import WebhookEndpoint

    if not WebhookEndpoint.objects.filter(
        workspace_id=post.workspace_id, name=PUBLISH_ENDPOINT
    ).exists():
        raise PermanentError(
            f'no webhook endpoint named "{PUBLISH_ENDPOINT}": add one under Settings → '
            "Approval policy to publish posts"
        )
    extra = {"X-AIOS-Proposal": str(post.proposal_id)} if post.proposal_id else {}
    return endpoint_post(
        post.workspace, PUBLISH_ENDPOINT, publication(post), post.idempotency_key, extra
    )


def publication(post: ScheduledPost) -> dict[str, Any]:
    """What the publishing endpoint receives; the same for every attempt."""
    return {
        "post_id": post.pk,
        "brief_id": post.brief_id,
        "topic": post.brief.topic,
        "channel": post.channel,
        "language": post.language,
        "title": post.draft.title,
        "body": post.draft.body,
        "version": post.draft.version,
        "publish_at": post.publish_at.isoformat(),
    }


@transaction.atomic
def _settle(
    post: ScheduledPost,
    held: lease.Lease,
    status: str,
    *,
    result=None,
    error: str = "",
    claimable: Q | None = None,
) -> None:
    """Records what became of the post, only under the current lease (fenced), and lets go."""
    rows = held.fenced().filter(Q(status=PostStatus.PUBLISHING) if claimable is None else claimable)
    done = rows.update(
        status=status,
        result=result,
        error=error[:1000],
        lease_expires_at=None,
        published_at=timezone.now() if status == PostStatus.PUBLISHED else None,
    )
    if not done or status == PostStatus.SCHEDULED:
        return
    audit_record(
        workspace_id=post.workspace_id,
        actor=Actor.system("content publisher"),
        action="content.publish" if status == PostStatus.PUBLISHED else "content.publish_failed",
        object_type="post",
        object_id=post.pk,
        object_label=f"{post.brief.topic} ({post.channel} {post.language})"[:200],
        after={"status": status, "result": result, "key": post.idempotency_key},
        reason=error,
    )
    _brief_follow(post.brief, failed=error if status == PostStatus.FAILED else "")


def _brief_follow(brief: ContentBrief, *, failed: str) -> None:
    if failed:
        brief_status_set(brief=brief, status=BriefStatus.FAILED, reason=failed)
        return
    live = brief.posts.exclude(status=PostStatus.CANCELLED)
    if not live.exclude(status=PostStatus.PUBLISHED).exists():
        brief_status_set(brief=brief, status=BriefStatus.PUBLISHED)
