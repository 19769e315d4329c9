"""Writes to canonical memory: versions, contradictions, notes edited in place, embeddings.

Writes of one (workspace, namespace, key) are serialised by a transaction-scoped advisory
lock, so two writers can never both create version n+1. Embeddings are computed after
commit, in batches, by a worker (`memory.embed_pending`); until then an item is found by
full text only.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from aios_site.core import lease
from aios_site.core.actors import USER, Actor
from aios_site.core.audit import audit_record
from aios_site.core.errors import describe, is_transient
from aios_site.errors import Conflict
from aios_site.queues import send
from memory.imports import read_rows
from memory.models import (
    SEARCH_CONFIGS,
    ImportStatus,
    Kind,
    MemoryCitation,
    MemoryEdit,
    MemoryImport,
    MemoryItem,
    SourceKind,
    Status,
)
from memory.selectors import recall

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

    @property
    def is_authoritative(self) -> bool:
        """A person, or the catalog sync writing the shop's own data (keyed by its ids):
        what they write replaces the current version without review."""
        return self.kind in (SourceKind.HUMAN, SourceKind.CATALOG)

    @property
    def actor(self) -> Actor:
        if self.run is not None:
            return Actor.of_run(self.run)
        if self.user is not None:
            return Actor.of_user(self.user)
        if self.is_human:
            return Actor(USER, self.ref)
        return Actor.system(f"{self.kind} {self.ref}".strip())


def _audit(item: MemoryItem, actor: Actor, action: str, **change) -> None:
    """One audit entry about a version of a key, in the transaction that changed it."""
    audit_record(
        workspace_id=item.workspace_id,
        actor=actor,
        action=f"memory.{action}",
        object_type="memory",
        object_id=f"{item.namespace}/{item.key}",
        object_label=f"{item.namespace}/{item.key} v{item.version}",
        **change,
    )


def _shown(item: MemoryItem) -> dict[str, Any]:
    return {
        "version": item.version,
        "kind": item.kind,
        "status": item.status,
        "content": item.content,
        "valid_until": item.valid_until,
    }


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
    embed_later: bool = True,
) -> MemoryItem:
    """Writes a fact (a new version) or a note (edited in place); returns the row written,
    with `outcome` saying what happened: created, unchanged, edited or needs_review.

    A fact from anyone but a person or the catalog sync that says something else than the
    current version is not applied: it waits as `needs_review` until someone accepts or
    rejects it. A caller writing many items passes `embed_later=False` and enqueues one
    embedding batch itself.
    """
    key = key or uuid.uuid4().hex[:12]
    _lock(workspace.pk, namespace, key)
    current = _current(workspace, namespace, key)
    if current and current.kind != kind:
        raise Conflict(f"{namespace}/{key} is a {current.kind}, not a {kind}")
    metadata = metadata or {}
    if current and current.content == content and current.metadata == metadata:
        current.outcome = "unchanged"  # writing the same thing twice is one version
        return current
    if current and kind == Kind.NOTE:
        before = _shown(current)
        note = _note_edit(current, content, metadata, valid_until, source)
        _audit(note, source.actor, "edit", before=before, after=_shown(note))
        if embed_later:
            transaction.on_commit(embed_soon)
        return note
    status = Status.CURRENT
    if current and not source.is_authoritative:
        status = Status.NEEDS_REVIEW
    row = {"workspace": workspace, "namespace": namespace, "key": key, "kind": kind}
    row.update(content=content, metadata=metadata, valid_until=valid_until, status=status)
    item = _create(row, language, source, version=_next_version(workspace, namespace, key))
    if current and status == Status.CURRENT:
        _supersede(current, item)
    item.outcome = "created" if status == Status.CURRENT else Status.NEEDS_REVIEW
    before = _shown(current) if current else None
    _audit(item, source.actor, "write", before=before, after=_shown(item))
    if embed_later:
        transaction.on_commit(embed_soon)
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
    now = timezone.now()
    note.valid_until = valid_until if valid_until is None or valid_until > now else now
    note.save(update_fields=["content", "metadata", "embedding", "valid_until", "updated_at"])
    _index_text(note)
    note.outcome = "edited"
    return note


@transaction.atomic
def memory_review(*, item: MemoryItem, accept: bool, actor: Actor) -> MemoryItem:
    """Decides a contradiction: accepted, it becomes the current version; else it is kept,
    marked rejected, and never recalled."""
    _lock(item.workspace_id, item.namespace, item.key)
    item.refresh_from_db()
    if item.status != Status.NEEDS_REVIEW:
        raise Conflict(f"{item} is not waiting for review")
    current = _current(item.workspace, item.namespace, item.key)
    if not accept:
        item.status = Status.REJECTED
        item.save(update_fields=["status", "updated_at"])
        _audit(item, actor, "reject", after=_shown(item))
        return item
    item.status, item.valid_from = Status.CURRENT, timezone.now()
    item.save(update_fields=["status", "valid_from", "updated_at"])
    if current:
        _supersede(current, item)
    _audit(item, actor, "accept", before=_shown(current) if current else None, after=_shown(item))
    return item


@transaction.atomic
def memory_expire(*, item: MemoryItem, actor: Actor) -> MemoryItem:
    """Ends the item's validity now (it stays visible to recalls as of earlier times)."""
    now = timezone.now()
    if item.valid_until is None or item.valid_until > now:
        before = _shown(item)
        item.valid_until = max(now, item.valid_from)
        item.save(update_fields=["valid_until", "updated_at"])
        _audit(item, actor, "expire", before=before, after=_shown(item))
    return item


@transaction.atomic
def memory_pin(*, item: MemoryItem, pinned: bool, actor: Actor) -> MemoryItem:
    if item.pinned != pinned:
        item.pinned = pinned
        item.save(update_fields=["pinned", "updated_at"])
        _audit(item, actor, "pin" if pinned else "unpin")
    return item


def embed_soon() -> None:
    """Asks a worker to embed what has no vector yet (call it after the commit)."""
    from memory.tasks import embed_pending

    send(embed_pending)


def embed_pending(*, limit: int = 10_000) -> int:
    """Embeds items that have no vector yet, a batch at a time; returns how many."""
    from agents.llm import embed_for_storage

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
            vectors = embed_for_storage([item.content for item in batch])
            for item, vector in zip(batch, vectors, strict=True):
                item.embedding = vector
            MemoryItem.objects.bulk_update(batch, ["embedding"])
        done += len(batch)
    return done


KEEP = object()  # memory_update: "as it is now"


def memory_update(
    *,
    item: MemoryItem,
    source: Source,
    content: str | None = None,
    metadata: dict | None = None,
    valid_until: datetime | object | None = KEEP,
) -> MemoryItem:
    """A change to the current item of a key: a new version of a fact, an edit of a note.
    What the change leaves out is carried over (`valid_until=None` says "never expires")."""
    return memory_write(
        workspace=item.workspace,
        namespace=item.namespace,
        key=item.key,
        kind=item.kind,
        content=item.content if content is None else content,
        metadata=item.metadata if metadata is None else metadata,
        valid_until=item.valid_until if valid_until is KEEP else valid_until,
        language=item.language or None,
        source=source,
    )


@transaction.atomic
def memory_forget(*, workspace, namespace: str, key: str, actor: Actor) -> int:
    """Deletes (softly) every version of a key, including any waiting for review; returns
    how many. Recalls as of earlier times still see what was valid then."""
    _lock(workspace.pk, namespace, key)
    versions = MemoryItem.objects.filter(
        workspace=workspace, namespace=namespace, key=key, deleted_at__isnull=True
    )
    newest = versions.order_by("-version").first()
    deleted = versions.update(deleted_at=timezone.now(), updated_at=timezone.now())
    if newest:
        _audit(newest, actor, "delete", before=_shown(newest), after=None)
    return deleted


def recall_for_step(*, run, seq: int, query: str, namespaces, k: int, kinds) -> list[dict]:
    """What `ctx.recall` does (plugged into the engine at start-up): the recall, each item
    remembering the run's step that used it."""
    results = recall(
        workspace_id=run.workspace_id, query=query, namespaces=namespaces, k=k, kinds=kinds
    )
    memory_cite(run=run, seq=seq, results=results)
    return results


def memory_cite(*, run, seq: int, results: list[dict]) -> None:
    """Remembers that a run's step recalled these items (the console's "used by")."""
    MemoryCitation.objects.bulk_create(
        [MemoryCitation(item_id=result["id"], run=run, seq=seq) for result in results],
        ignore_conflicts=True,
    )


# -- bulk actions of the console ------------------------------------------------------------


def _review(accept: bool):
    return lambda item, actor: memory_review(item=item, accept=accept, actor=actor)


def _pin(pinned: bool):
    return lambda item, actor: memory_pin(item=item, pinned=pinned, actor=actor)


def memory_forget_item(*, item: MemoryItem, actor: Actor) -> int:
    return memory_forget(
        workspace=item.workspace, namespace=item.namespace, key=item.key, actor=actor
    )


# action -> what it does with (item, actor): the console's, the API's and the admin's
BULK_ACTIONS = {
    "expire": lambda item, actor: memory_expire(item=item, actor=actor),
    "pin": _pin(True),
    "unpin": _pin(False),
    "delete": lambda item, actor: memory_forget_item(item=item, actor=actor),
    "accept": _review(True),
    "reject": _review(False),
}


def memory_bulk(*, workspace, action: str, ids: list[int], actor: Actor) -> tuple[int, list[dict]]:
    """Applies one console action to many items of the workspace; returns how many changed
    and, for the others, why not (an item of another workspace is simply not found)."""
    perform = BULK_ACTIONS[action]
    items = MemoryItem.objects.filter(workspace=workspace, pk__in=ids).select_related("workspace")
    found = {item.pk: item for item in items}
    changed, skipped = 0, []
    for pk in ids:
        item = found.get(pk)
        if item is None:
            skipped.append({"id": pk, "reason": "not found"})
            continue
        try:
            perform(item, actor)
            changed += 1
        except Conflict as error:
            skipped.append({"id": pk, "reason": str(error)})
    return changed, skipped


# -- imports -------------------------------------------------------------------------------

IMPORT_CHUNK = 200


def memory_import_start(*, workspace, user, filename: str, data: bytes, **defaults) -> MemoryImport:
    """Validates the whole file, stores its rows and queues the writing; nothing is written
    if any row is wrong (imports.read_rows raises with the line numbers)."""
    rows = read_rows(data, filename=filename, **defaults)
    job = MemoryImport.objects.create(
        workspace=workspace, filename=filename[:200], rows=rows, total=len(rows), created_by=user
    )
    transaction.on_commit(lambda: _import_soon(job.pk))
    return job


def _import_soon(import_id: int) -> None:
    from memory.tasks import import_advance

    send(import_advance, import_id)


IMPORT_ATTEMPTS = 10  # claims of one import (each resumes where the last one stopped)


def _importing() -> lease.LeaseKind:
    """Writing an import is leased work: one worker at a time, chunks fenced by the token."""
    return lease.LeaseKind(
        name="memory import",
        model=MemoryImport,
        seconds=settings.AIOS_LEASE_SECONDS,
        max_attempts=IMPORT_ATTEMPTS,
        claimable=Q(status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING]),
        on_exhausted=_import_gave_up,
        on_expired=_import_soon,
    )


def memory_import_advance(*, import_id: int) -> None:
    """Writes the import a chunk per transaction, progress included, under the import's
    lease: a worker that dies or is paused is taken over at the first unwritten row, and a
    chunk of one that lost its lease is not written (no row twice). A transient error leaves
    it to the sweep; any other fails the import with the error."""
    with lease.held(_importing(), import_id) as held:
        if held is None:
            return  # another worker has it, it is over, or it ran out of attempts
        try:
            while _import_chunk(held):
                pass
        except Exception as error:
            if is_transient(error):
                raise  # the lease runs out and the sweep queues it again
            memory_import_fail(import_id=import_id, error=describe(error), held=held)


def _import_gave_up(held: lease.Lease) -> None:
    memory_import_fail(
        import_id=held.pk, error=f"gave up after {IMPORT_ATTEMPTS} attempts", held=held
    )


def _import_chunk(held: lease.Lease) -> bool:
    with transaction.atomic():
        job = (
            held.fenced()
            .select_for_update(of=("self",))
            .select_related("workspace", "created_by")
            .first()
        )
        if job is None or job.finished:
            return False  # taken over by another worker, or it is over
        rows = job.rows[job.done : job.done + IMPORT_CHUNK]
        source = Source(SourceKind.IMPORT, ref=job.filename, user=job.created_by)
        counts: Counter[str] = Counter()
        for line, row in enumerate(rows, start=job.done + 1):
            try:
                counts[_import_row(job.workspace, row, source)] += 1
            except Conflict as error:  # e.g. a key that holds a note, written as a fact
                counts["skipped"] += 1
                job.error = f"{job.error}item {line}: {error}\n"[-2000:]
        job.done += len(rows)
        job.created += counts["created"] + counts["edited"]
        job.unchanged += counts["unchanged"]
        job.needs_review += counts[Status.NEEDS_REVIEW]
        job.skipped += counts["skipped"]
        job.status = ImportStatus.RUNNING if job.done < job.total else ImportStatus.DONE
        job.finished_at = timezone.now() if job.status == ImportStatus.DONE else None
        job.save()
        if counts["created"] or counts["edited"] or counts[Status.NEEDS_REVIEW]:
            transaction.on_commit(embed_soon)
        return job.status == ImportStatus.RUNNING


def _import_row(workspace, row: dict, source: Source) -> str:
    fields = dict(row)
    valid_until = fields.pop("valid_until", None)
    item = memory_write(
        workspace=workspace,
        source=source,
        valid_until=parse_datetime(valid_until) if valid_until else None,
        embed_later=False,
        **fields,
    )
    return item.outcome


def memory_import_fail(*, import_id: int, error: str, held: lease.Lease | None = None) -> None:
    """Marks an unfinished import failed; under a lease, only while it is the current one."""
    rows = held.fenced() if held is not None else MemoryImport.objects.filter(pk=import_id)
    rows.exclude(status=ImportStatus.DONE).update(
        status=ImportStatus.FAILED,
        error=error[:2000],
        finished_at=timezone.now(),
        lease_expires_at=None,
    )


def memory_sweep() -> dict[str, int]:
    """Picks up what a lost message or a dead worker left behind: imports that stopped
    progressing, and items still waiting for their vector."""
    stale = timezone.now() - timedelta(seconds=settings.AIOS_RUN_STALE_SECONDS)
    # One whose worker died or was paused (its lease ran out), or whose message was lost
    # (never claimed), is queued again; one without attempts left is failed.
    never_claimed = Q(updated_at__lt=stale)
    resumed = lease.expired_sweep(_importing(), unclaimed=never_claimed)["again"]
    unembedded = MemoryItem.objects.filter(
        embedding__isnull=True, deleted_at__isnull=True, created_at__lt=stale
    ).exists()
    if unembedded:
        embed_soon()
    return {"imports": resumed, "embed": int(unembedded)}


DEMO_FILE = Path(__file__).parent / "data" / "demo.jsonl"


def memory_demo_ensure(*, workspace) -> int:
    """The demo shop's policies, brand voice and a note; idempotent (the same content again
    is no new version). Returns how many items were written now."""
    rows = read_rows(DEMO_FILE.read_bytes(), filename=DEMO_FILE.name)
    source = Source(SourceKind.IMPORT, ref="demo")
    with transaction.atomic():
        written = [_import_row(workspace, row, source) for row in rows]
        if any(outcome != "unchanged" for outcome in written):
            transaction.on_commit(embed_soon)
    return sum(outcome != "unchanged" for outcome in written)


# -- structured fields ---------------------------------------------------------------------------


def fields_edited(item: MemoryItem, form) -> dict[str, Any]:
    """The item's metadata with the console's `field:<name>` inputs in place, each read as the
    type it holds now (a number stays a number: templates compute with it). A field the form
    does not carry is kept; a name the item does not have is not added."""
    from memory.selectors import item_fields

    metadata = dict(item.metadata or {})
    for field in item_fields(item):
        name = f"field:{field['name']}"
        if field["kind"] == "bool":
            metadata[field["name"]] = form.get(name) == "on"
        elif name in form:
            metadata[field["name"]] = _field_value(field, form[name].strip())
    return metadata


def _field_value(field: dict[str, Any], text: str) -> Any:
    if field["kind"] != "number":
        return text
    try:
        number = float(text.replace(",", "."))
    except ValueError as error:
        raise ValidationError(f"{field['label']}: {text!r} is not a number") from error
    return int(number) if isinstance(field["value"], int) and number.is_integer() else number


def stale_text(item: MemoryItem, content: str, metadata: dict[str, Any]) -> list[str]:
    """Where a number field changed but the text still states the old number: templated
    replies use the field, drafted ones read the text, so the two must agree."""
    said = []
    for name, old in (item.metadata or {}).items():
        new = metadata.get(name)
        number = isinstance(old, int | float) and not isinstance(old, bool)
        if number and new != old and _states(content, old) and not _states(content, new):
            said.append(
                f"The text still says {_plain(old)} where “{name.replace('_', ' ')}” is "
                f"now {_plain(new)}: edit the text too, or drafted replies will say "
                f"{_plain(old)}."
            )
    return said


def _states(text: str, number: Any) -> bool:
    return re.search(rf"(?<![\d.]){re.escape(_plain(number))}(?![\d])", text) is not None


def _plain(number: Any) -> str:
    return f"{number:g}" if isinstance(number, float) else str(number)
