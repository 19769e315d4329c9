"""Writes to canonical memory: versions, contradictions, notes edited in place, embeddings.

Writes of one (workspace, namespace, key) are serialised by a transaction-scoped advisory
lock, so two writers can never both create version n+1. Embeddings are computed after
commit, in batches, by a worker (`memory.embed_pending`); until then an item is found by
full text only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.postgres.search import SearchVector
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from memory.models import SEARCH_CONFIGS, Kind, MemoryEdit, MemoryItem, SourceKind, Status

EMBED_BATCH = 64


@dataclass(frozen=True)
class Source:
    """Where a write comes from: a person, an import, the catalog sync, or a run's step."""

    kind: str
    ref: str = ""
    user: Any = None
    run: Any = None
    seq: int | None = None

    @classmethod
    def human(cls, user) -> Source:
        return cls(SourceKind.HUMAN, ref=user.get_username(), user=user)

    @classmethod
    def of_run(cls, run, seq: int) -> Source:
        return cls(SourceKind.RUN, ref=f"run {run.pk} step {seq}", run=run, seq=seq)

    @property
    def is_human(self) -> bool:
        return self.kind == SourceKind.HUMAN


def _lock(workspace_id: int, namespace: str, key: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"memory:{workspace_id}:{namespace}:{key}"],
        )


def _current(workspace, namespace: str, key: str) -> MemoryItem | None:
    return (
        MemoryItem.objects.filter(
            workspace=workspace,
            namespace=namespace,
            key=key,
            status=Status.CURRENT,
            deleted_at__isnull=True,
        )
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=timezone.now()))
        .order_by("-version")
        .first()
    )


def _language(content: str, language: str | None) -> str:
    if language:
        return language.split("-")[0].lower()
    from agents.llm import local

    [detected] = local.detect_language([content], default="")
    return "" if detected.get("fallback") else str(detected["language"])


@transaction.atomic
def memory_write(
    *,
    workspace,
    namespace: str,
    kind: str,
    content: str,
    source: Source,
    key: str | None = None,
    metadata: dict | None = None,
    valid_until: datetime | None = None,
    language: str | None = None,
) -> MemoryItem:
    """Writes a fact (a new version) or a note (edited in place); returns the row written.

    A fact from anyone but a person that says something else than the current version is
    not applied: it waits as `needs_review` until someone accepts or rejects it.
    """
    key = key or uuid.uuid4().hex[:12]
    _lock(workspace.pk, namespace, key)
    current = _current(workspace, namespace, key)
    if current and current.kind != kind:
        raise ValueError(f"{namespace}/{key} is a {current.kind}, not a {kind}")
    metadata = metadata or {}
    if current and current.content == content and current.metadata == metadata:
        return current  # nothing new: writing the same thing twice is one version
    if current and kind == Kind.NOTE:
        return _note_edit(current, content, metadata, valid_until, source)
    status = Status.CURRENT
    if current and not source.is_human:
        status = Status.NEEDS_REVIEW
    row = {"workspace": workspace, "namespace": namespace, "key": key, "kind": kind}
    row.update(content=content, metadata=metadata, valid_until=valid_until, status=status)
    item = _create(row, language, source, version=_next_version(workspace, namespace, key))
    if current and status == Status.CURRENT:
        _supersede(current, item)
    transaction.on_commit(_embed_later)
    return item


def _next_version(workspace, namespace: str, key: str) -> int:
    last = (
        MemoryItem.objects.filter(workspace=workspace, namespace=namespace, key=key)
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
    )
    return (last or 0) + 1


def _create(row: dict[str, Any], language: str | None, source: Source, *, version: int):
    language = _language(row["content"], language)
    now = timezone.now()
    valid_until = row.pop("valid_until")
    item = MemoryItem.objects.create(
        **row,
        version=version,
        language=language,
        search_config=SEARCH_CONFIGS.get(language, "simple"),
        source_kind=source.kind,
        source_ref=source.ref[:200],
        source_user=source.user,
        source_run=source.run,
        source_seq=source.seq,
        valid_from=now,
        valid_until=valid_until if valid_until is None or valid_until > now else now,
    )
    _index_text(item)
    return item


def _index_text(item: MemoryItem) -> None:
    MemoryItem.objects.filter(pk=item.pk).update(
        search_vector=SearchVector("content", config=item.search_config)
    )


def _supersede(old: MemoryItem, new: MemoryItem) -> None:
    """The old version's validity ends where the new one's begins."""
    MemoryItem.objects.filter(pk=old.pk).update(valid_until=new.valid_from, superseded_by=new)


def _note_edit(note: MemoryItem, content, metadata, valid_until, source: Source) -> MemoryItem:
    MemoryEdit.objects.create(item=note, before=note.content, after=content, source_ref=source.ref)
    note.content, note.metadata, note.embedding = content, metadata, None
    note.valid_until = valid_until
    note.save(update_fields=["content", "metadata", "embedding", "valid_until", "updated_at"])
    _index_text(note)
    transaction.on_commit(_embed_later)
    return note


@transaction.atomic
def memory_review(*, item: MemoryItem, accept: bool) -> MemoryItem:
    """Decides a contradiction: accepted, it becomes the current version; else it is kept,
    marked rejected, and never recalled."""
    _lock(item.workspace_id, item.namespace, item.key)
    item.refresh_from_db()
    if item.status != Status.NEEDS_REVIEW:
        raise ValueError(f"{item} is not waiting for review")
    if not accept:
        item.status = Status.REJECTED
        item.save(update_fields=["status", "updated_at"])
        return item
    current = _current(item.workspace, item.namespace, item.key)
    item.status, item.valid_from = Status.CURRENT, timezone.now()
    item.save(update_fields=["status", "valid_from", "updated_at"])
    if current:
        _supersede(current, item)
    return item


def memory_expire(*, item: MemoryItem) -> MemoryItem:
    """Ends the item's validity now (it stays visible to recalls as of earlier times)."""
    now = timezone.now()
    if item.valid_until is None or item.valid_until > now:
        item.valid_until = max(now, item.valid_from)
        item.save(update_fields=["valid_until", "updated_at"])
    return item


def memory_delete(*, item: MemoryItem) -> MemoryItem:
    """Soft: gone from recall from now on, kept for history and for replays of the past."""
    if item.deleted_at is None:
        item.deleted_at = timezone.now()
        item.save(update_fields=["deleted_at", "updated_at"])
    return item


def memory_pin(*, item: MemoryItem, pinned: bool) -> MemoryItem:
    item.pinned = pinned
    item.save(update_fields=["pinned", "updated_at"])
    return item


def _embed_later() -> None:
    from memory.tasks import embed_pending

    embed_pending.delay()


def embed_pending(*, limit: int = 10_000) -> int:
    """Embeds items that have no vector yet, a batch at a time; returns how many."""
    from agents.llm import local

    done = 0
    while done < limit:
        with transaction.atomic():
            batch = list(
                MemoryItem.objects.filter(embedding__isnull=True)
                .select_for_update(skip_locked=True)
                .only("pk", "content")[:EMBED_BATCH]
            )
            if not batch:
                break
            vectors = local.embed([item.content for item in batch])
            for item, vector in zip(batch, vectors, strict=True):
                item.embedding = vector
            MemoryItem.objects.bulk_update(batch, ["embedding"])
        done += len(batch)
    return done
