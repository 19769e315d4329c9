"""What the content writer reads and records, as journaled tools: a retry or a replay sees
the brief (and the free slot) the original step saw. Each takes the run's workspace id and
finds nothing outside that workspace."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from agents.tools import tool
from catalog.models import BriefStatus, ContentBrief, Product
from catalog.tools import found


def brief_of(workspace_id: int, brief_id: int) -> ContentBrief:
    briefs = ContentBrief.objects.filter(workspace_id=workspace_id, pk=brief_id)
    return found(briefs.select_related("workspace"), "brief", brief_id)


@tool("content.brief")
def brief_read(*, workspace_id: int, brief_id: int) -> dict[str, Any]:
    brief = brief_of(workspace_id, brief_id)
    return {
        "brief_id": brief.pk,
        "key": brief.memory_key,
        "topic": brief.topic,
        "audience": brief.audience,
        "channels": brief.channels,
        "languages": brief.languages,
        "tone": brief.tone,
        "due_at": brief.due_at.isoformat() if brief.due_at else None,
        "research_urls": brief.research_urls,
        "shop_name": brief.workspace.name,
    }


@tool("content.eval_brief")
def eval_brief_read(*, workspace_id: int, item: dict[str, Any]) -> dict[str, Any]:
    """An eval's brief as the writer sees one of the shop's: its own topic, audience,
    channels and languages, the shop's name and brand voice; no pages are read for it."""
    from aios_site.accounts.models import Workspace

    return {
        "brief_id": None,
        "key": "",
        "topic": item["topic"],
        "audience": item.get("audience", ""),
        "channels": list(item["channels"]),
        "languages": list(item["languages"]),
        "tone": "brand",
        "due_at": None,
        "research_urls": [],
        "shop_name": Workspace.objects.get(pk=workspace_id).name,
    }


@tool("content.product_titles")
def product_titles(*, workspace_id: int) -> list[dict[str, Any]]:
    """The shop's products (not deleted): which of them a brief is about, and which its posts
    must not name."""
    products = Product.objects.filter(workspace_id=workspace_id, deleted_at__isnull=True)
    return [
        {"product_id": product_id, "title": title}
        for product_id, title in products.order_by("title", "pk").values_list(
            "external_id", "title"
        )
    ]


@tool("content.brief_status")
def brief_status(*, workspace_id: int, brief_id: int, status: str, reason: str = "") -> str:
    from catalog.content.services import brief_status_set

    if status not in BriefStatus.values:
        raise ValueError(f"no brief status {status!r}")
    brief_status_set(brief=brief_of(workspace_id, brief_id), status=status, reason=reason)
    return status


@tool("content.publish_time")
def publish_time(*, workspace_id: int, brief_id: int, now: str) -> str:
    """The brief's due time if it is still ahead, else the next free publishing slot."""
    from catalog.content.services import next_free_slot

    brief, moment = brief_of(workspace_id, brief_id), datetime.fromisoformat(now)
    if brief.due_at and brief.due_at > moment:
        return brief.due_at.isoformat()
    return timezone.localtime(next_free_slot(workspace_id=workspace_id, after=moment)).isoformat()
