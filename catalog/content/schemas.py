"""What the content API takes and returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema

ChannelName = Literal["blog", "newsletter", "social"]


class BriefIn(Schema):
    topic: str = Field(min_length=1, max_length=200)
    audience: str = Field(default="", max_length=200)
    channels: list[ChannelName] = Field(min_length=1, max_length=3)
    tone: str = Field(default="brand", max_length=50, description="A memory namespace.")
    due_at: datetime | None = None
    languages: list[str] = Field(default=["en"], min_length=1, max_length=6)
    research_urls: list[str] = Field(default=[], max_length=5, description="Only these are read.")


class DraftOut(Schema):
    id: int
    channel: str
    language: str
    version: int
    title: str
    body: str
    author: str
    author_label: str
    tier: str
    notes: list[dict[str, Any]]
    diff: list[list[str]] | None
    proposal_id: int | None
    created_at: datetime


class PostOut(Schema):
    id: int
    brief_id: int
    topic: str = Field(alias="brief.topic")
    channel: str
    language: str
    draft_id: int
    version: int = Field(alias="draft.version")
    title: str = Field(alias="draft.title")
    publish_at: datetime
    status: str
    error: str
    result: dict[str, Any] | None
    published_at: datetime | None
    proposal_id: int | None


class OutputOut(Schema):
    channel: str
    language: str
    status: str
    version: int | None
    post_id: int | None
    publish_at: datetime | None
    error: str


class BriefOut(Schema):
    id: int
    topic: str
    audience: str
    channels: list[str]
    tone: str
    due_at: datetime | None
    languages: list[str]
    research_urls: list[str]
    status: str
    status_reason: str
    run_id: int | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    outputs: list[OutputOut]

    @staticmethod
    def resolve_created_by(brief) -> str | None:
        return brief.created_by.get_username() if brief.created_by else None

    @staticmethod
    def resolve_outputs(brief) -> list[dict[str, Any]]:
        from catalog.content.selectors import brief_outputs_of

        return [
            {
                "channel": output.channel,
                "language": output.language,
                "status": output.status,
                "version": output.latest.version if output.latest else None,
                "post_id": output.post.pk if output.post else None,
                "publish_at": output.post.publish_at if output.post else None,
                "error": output.post.error if output.post else "",
            }
            for output in brief_outputs_of(brief)
        ]


class BriefDetailOut(BriefOut):
    drafts: list[DraftOut]
    posts: list[PostOut]

    @staticmethod
    def resolve_drafts(brief) -> list:
        return list(brief.drafts.all())

    @staticmethod
    def resolve_posts(brief) -> list:
        return list(brief.posts.all())


class IdeasOut(Schema):
    run_id: int
    status: str
    ideas: list[str]
    tier: str
    model: str
    error: str
