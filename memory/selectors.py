"""Reads of canonical memory, always scoped to one workspace."""

from __future__ import annotations

import difflib
import re
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from django.db import connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone
from pgvector.django import CosineDistance

from memory.models import (
    SEARCH_CONFIGS,
    MemoryCitation,
    MemoryEdit,
    MemoryImport,
    MemoryItem,
    Status,
)

RRF_K = 60  # reciprocal-rank fusion's usual constant: a rank's weight is 1 / (60 + rank)
CANDIDATES = 4  # each side contributes k times this many candidates to the fusion
EF_SEARCH = 100
MAX_QUERY_WORDS = 32
MIN_COVERAGE = 0.5
STALE_AFTER = timedelta(days=90)  # a current item nobody has touched for this long is "stale"


def valid_at(*, workspace_id: int, as_of: datetime) -> QuerySet[MemoryItem]:
    """The versions a reader at `as_of` would have seen: current, in their validity window,
    not yet deleted then."""
    return MemoryItem.objects.filter(
        Q(valid_until__isnull=True) | Q(valid_until__gt=as_of),
        Q(deleted_at__isnull=True) | Q(deleted_at__gt=as_of),
        workspace_id=workspace_id,
        status=Status.CURRENT,
        valid_from__lte=as_of,
    )


def recall(
    *,
    workspace_id: int,
    query: str,
    namespaces: list[str] | None = None,
    k: int = 8,
    as_of: datetime | None = None,
    kinds: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The k items that best match the query by meaning and by words (fused by rank)."""
    as_of = as_of or timezone.now()
    items = valid_at(workspace_id=workspace_id, as_of=as_of)
    if namespaces:
        items = items.filter(namespace__in=namespaces)
    if kinds:
        items = items.filter(kind__in=kinds)
    limit = k * CANDIDATES
    by_vector = _vector_ranks(items, query, limit)
    by_text = _text_ranks(items, query, limit)
    scores: dict[int, float] = {}
    for ranks in (by_vector, by_text):
        for pk, rank in ranks.items():
            scores[pk] = scores.get(pk, 0.0) + 1 / (RRF_K + rank)
    best = sorted(scores, key=lambda pk: (-scores[pk], pk))[:k]
    rows = MemoryItem.objects.in_bulk(best)
    return [_result(rows[pk], scores[pk], by_vector.get(pk), by_text.get(pk)) for pk in best]


def _vector_ranks(items: QuerySet, query: str, limit: int) -> dict[int, int]:
    from agents.llm import embed_for_storage

    [vector] = embed_for_storage([query])
    nearest_rows = nearest(items, vector, limit)
    return {pk: rank for rank, (pk, _) in enumerate(nearest_rows, start=1)}


def nearest(
    items: QuerySet, vector: list[float], limit: int, *, ef_search: int = EF_SEARCH
) -> list[tuple[int, float]]:
    """(pk, cosine distance) of the `limit` items nearest the vector, by the HNSW index."""
    with transaction.atomic(), connection.cursor() as cursor:
        # Iterative scans keep walking the HNSW graph until enough rows pass the workspace
        # filter, instead of returning the few of the first ef_search candidates that do.
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute("SET LOCAL hnsw.ef_search = %s", [ef_search])
        rows = list(
            items.filter(embedding__isnull=False)
            .annotate(distance=CosineDistance("embedding", vector))
            .order_by("distance")
            .values_list("pk", "distance")[:limit]
        )
    rows.sort(key=lambda row: row[1])  # relaxed order: nearly sorted; make it exact
    return rows


# The GIN index is searched once with the query in every configuration (ORed), then each
# candidate is checked in its own language's configuration: one index scan instead of one per
# language, and a tsquery per row only for the few rows that can match.
_CONFIGS = sorted({*SEARCH_CONFIGS.values(), "simple"})
_ANY_CONFIG = " || ".join(f"websearch_to_tsquery('{config}', %s)" for config in _CONFIGS)
_OWN_CONFIG = "websearch_to_tsquery(search_config::regconfig, %s)"
_MATCH = f"search_vector @@ ({_ANY_CONFIG}) AND search_vector @@ {_OWN_CONFIG}"


def any_words(query: str) -> str:
    """The query as "w1 or w2 or …" for websearch_to_tsquery: an item that has some of the
    words matches and ranks by how many and how close, where the default (every word) would
    leave a natural-language question without any match."""
    return " or ".join(re.findall(r"\w+", query)[:MAX_QUERY_WORDS])


def _text_ranks(items: QuerySet, query: str, limit: int) -> dict[int, int]:
    # Each item is matched in its own language's configuration (stemming, stop words).
    words = any_words(query)
    if not words:
        return {}
    matched = (
        items.annotate(
            matches=RawSQL(f"({_MATCH})", [words] * (len(_CONFIGS) + 1)),  # noqa: S611
            text_rank=RawSQL(f"ts_rank_cd(search_vector, {_OWN_CONFIG})", [words]),  # noqa: S611
        )
        .filter(matches=True)
        .order_by("-text_rank", "pk")
        .values_list("pk", flat=True)[: limit * CANDIDATES]
    )
    covering = _covering(list(matched), words)
    kept = [pk for pk in matched if pk in covering][:limit]
    return {pk: rank for rank, pk in enumerate(kept, start=1)}


# Of the query's words (stemmed, without stop words, in each item's configuration), how many
# the item holds. Matching any word finds candidates; counting only those that hold at least
# MIN_COVERAGE of them keeps one shared common word ("send", "week") from outvoting meaning.
_COVERAGE = """
SELECT item.id FROM memory_memoryitem AS item
CROSS JOIN LATERAL (
    SELECT count(*) AS terms,
           count(*) FILTER (WHERE item.search_vector @@ plainto_tsquery('simple', lexeme)) AS hits
    FROM unnest(tsvector_to_array(to_tsvector(item.search_config::regconfig, %s))) AS lexeme
) AS words
WHERE item.id = ANY(%s) AND words.hits >= greatest(1, ceil(words.terms * %s))
"""


def _covering(pks: list[int], words: str) -> set[int]:
    if not pks:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(_COVERAGE, [words.replace(" or ", " "), pks, MIN_COVERAGE])
        return {pk for (pk,) in cursor.fetchall()}


def _result(item: MemoryItem, score: float, vector_rank, text_rank) -> dict[str, Any]:
    return {
        "id": item.pk,
        "namespace": item.namespace,
        "key": item.key,
        "version": item.version,
        "kind": item.kind,
        "content": item.content,
        "metadata": item.metadata,
        "score": round(score, 6),
        "why": {"vector_rank": vector_rank, "text_rank": text_rank},
    }


# -- the curation console and the API --------------------------------------------------------


def _items(workspace_id: int) -> QuerySet[MemoryItem]:
    """A workspace's items without their (large) vectors, knowing whether they have one."""
    return (
        MemoryItem.objects.filter(workspace_id=workspace_id)
        .defer("embedding", "search_vector")
        .annotate(embedded=ExpressionWrapper(Q(embedding__isnull=False), BooleanField()))
    )


def _state_filters(now: datetime) -> dict[str, Q]:
    live = Q(deleted_at__isnull=True)
    valid = Q(valid_until__isnull=True) | Q(valid_until__gt=now)
    current = live & Q(status=Status.CURRENT, valid_from__lte=now) & valid
    return {
        "current": current,
        "needs_review": live & Q(status=Status.NEEDS_REVIEW),
        "stale": current & Q(updated_at__lt=now - STALE_AFTER),
        "expired": live
        & Q(status=Status.CURRENT, valid_until__lte=now, superseded_by__isnull=True),
        "superseded": Q(superseded_by__isnull=False),
        "rejected": Q(status=Status.REJECTED),
        "deleted": Q(deleted_at__isnull=False),
        "all": Q(),
    }


State = Literal[
    "current", "needs_review", "stale", "expired", "superseded", "rejected", "deleted", "all"
]
STATES = get_args(State)


def memory_list(
    *,
    workspace_id: int,
    state: str = "current",
    namespace: str | None = None,
    kind: str | None = None,
    source: str | None = None,
    pinned: bool | None = None,
    text: str | None = None,
) -> QuerySet[MemoryItem]:
    """Items of one workspace for browsing: by state (see STATES), namespace, kind, source
    kind, pinned and words in the key or content; newest first."""
    items = _items(workspace_id).filter(_state_filters(timezone.now())[state])
    if namespace:
        items = items.filter(namespace=namespace)
    if kind:
        items = items.filter(kind=kind)
    if source:
        items = items.filter(source_kind=source)
    if pinned is not None:
        items = items.filter(pinned=pinned)
    if text:
        items = items.filter(Q(content__icontains=text) | Q(key__icontains=text))
    return items.order_by("-pinned", "-updated_at", "-pk")


def memory_namespaces(*, workspace_id: int) -> list[str]:
    return list(
        MemoryItem.objects.filter(workspace_id=workspace_id)
        .order_by("namespace")
        .values_list("namespace", flat=True)
        .distinct()
    )


def memory_item(*, workspace_id: int, item_id: int) -> MemoryItem | None:
    return _items(workspace_id).filter(pk=item_id).first()


def memory_current(*, workspace_id: int, namespace: str, key: str) -> MemoryItem | None:
    """What a recall now would see under this key."""
    now = timezone.now()
    return (
        _items(workspace_id)
        .filter(_state_filters(now)["current"], namespace=namespace, key=key)
        .order_by("-version")
        .first()
    )


def memory_latest(*, workspace_id: int, namespace: str, key: str) -> MemoryItem | None:
    """The newest version of a key that is not deleted, whatever its state."""
    return (
        _items(workspace_id)
        .filter(namespace=namespace, key=key, deleted_at__isnull=True)
        .order_by("-version")
        .first()
    )


def memory_versions(*, workspace_id: int, namespace: str, key: str) -> QuerySet[MemoryItem]:
    """Every version of a key, newest first, deleted and rejected ones included."""
    return _items(workspace_id).filter(namespace=namespace, key=key).order_by("-version")


def memory_history(*, workspace_id: int, namespace: str, key: str) -> list[dict[str, Any]]:
    """The versions of a key, newest first, each with the word diff from the accepted version
    before it (a rejected or pending one is not what a later one changed) and the in-place
    edits of a note."""
    versions = list(memory_versions(workspace_id=workspace_id, namespace=namespace, key=key))
    edits: dict[int, list[MemoryEdit]] = {}
    for edit in MemoryEdit.objects.filter(item__in=[v.pk for v in versions]):
        edits.setdefault(edit.item_id, []).append(edit)
    history, accepted, accepted_fields = [], "", None
    for version in reversed(versions):  # oldest first: each diffs against the last accepted
        history.append(
            {
                "item": version,
                "diff": word_diff(accepted, version.content) if accepted else [],
                "fields": field_changes(accepted_fields, version.metadata or {})
                if accepted_fields is not None
                else [],
                "edits": [
                    {"edit": edit, "diff": word_diff(edit.before, edit.after)}
                    for edit in edits.get(version.pk, [])
                ],
            }
        )
        if version.status == Status.CURRENT:
            accepted, accepted_fields = version.content, version.metadata or {}
    return history[::-1]


def field_label(name: str) -> str:
    """ "Return days" for `return_days`."""
    return name.replace("_", " ").strip().capitalize()


def field_changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """The structured fields a version changed: [{label, before, after}], in key order."""
    return [
        {"label": field_label(name), "before": before.get(name), "after": after.get(name)}
        for name in sorted(before.keys() | after.keys())
        if before.get(name) != after.get(name)
    ]


def item_fields(item) -> list[dict[str, Any]]:
    """A fact's structured fields as the console edits them, beside its text: each with its
    name, label, value and input kind (templates read these fields, not the text)."""
    fields = []
    for name, value in sorted((item.metadata or {}).items()):
        if isinstance(value, bool):
            kind = "bool"
        elif isinstance(value, int | float):
            kind = "number"
        elif isinstance(value, str):
            kind = "text"
        else:  # a list or an object: shown, edited through the API
            continue
        fields.append({"name": name, "label": field_label(name), "value": value, "kind": kind})
    return fields


def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """(op, text) pieces, op being "equal", "insert" or "delete", word by word; the template
    renders them as text inside <ins>/<del>, so content stays escaped."""
    old, new = re.split(r"(\s+)", before), re.split(r"(\s+)", after)
    pieces: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op in ("delete", "replace"):
            pieces.append(("delete", "".join(old[i1:i2])))
        if op in ("insert", "replace"):
            pieces.append(("insert", "".join(new[j1:j2])))
        if op == "equal":
            pieces.append(("equal", "".join(old[i1:i2])))
    return [piece for piece in pieces if piece[1]]


def memory_used_by(
    *, workspace_id: int, namespace: str, key: str, limit: int = 50
) -> QuerySet[MemoryCitation]:
    """The runs (and their steps) that recalled any version of the key, newest first."""
    return MemoryCitation.objects.filter(
        item__workspace_id=workspace_id, item__namespace=namespace, item__key=key
    ).select_related("run__agent", "item")[:limit]


def memory_import_list(*, workspace_id: int, limit: int = 10) -> QuerySet[MemoryImport]:
    return MemoryImport.objects.filter(workspace_id=workspace_id).defer("rows")[:limit]


def memory_import(*, workspace_id: int, import_id: int) -> MemoryImport | None:
    return (
        MemoryImport.objects.filter(workspace_id=workspace_id, pk=import_id).defer("rows").first()
    )
