"""Reads of canonical memory, always scoped to one workspace."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone
from pgvector.django import CosineDistance

from memory.models import MemoryItem, Status

RRF_K = 60  # reciprocal-rank fusion's usual constant: a rank's weight is 1 / (60 + rank)
CANDIDATES = 4  # each side contributes k times this many candidates to the fusion
EF_SEARCH = 100


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
    from agents.llm import local

    [vector] = local.embed([query])
    with transaction.atomic(), connection.cursor() as cursor:
        # Iterative scans keep walking the HNSW graph until enough rows pass the workspace
        # filter, instead of returning the few of the first ef_search candidates that do.
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute("SET LOCAL hnsw.ef_search = %s", [EF_SEARCH])
        nearest = list(
            items.filter(embedding__isnull=False)
            .annotate(distance=CosineDistance("embedding", vector))
            .order_by("distance")
            .values_list("pk", "distance")[:limit]
        )
    nearest.sort(key=lambda row: row[1])  # relaxed order: nearly sorted; make it exact
    return {pk: rank for rank, (pk, _) in enumerate(nearest, start=1)}


def _text_ranks(items: QuerySet, query: str, limit: int) -> dict[int, int]:
    # Each item is matched in its own language's configuration (stemming, stop words).
    tsquery = "websearch_to_tsquery(search_config::regconfig, %s)"
    matched = (
        items.annotate(
            matches=RawSQL(f"search_vector @@ {tsquery}", [query]),  # noqa: S611
            text_rank=RawSQL(f"ts_rank_cd(search_vector, {tsquery})", [query]),  # noqa: S611
        )
        .filter(matches=True)
        .order_by("-text_rank", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    return {pk: rank for rank, pk in enumerate(matched, start=1)}


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
