"""What the memory API takes and returns. `MemoryIn` also validates every row of an import."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema

NAMESPACE = r"^[a-z0-9][a-z0-9_-]{0,49}$"
KEY = r"^[^/\s][^/]*$"  # no slash: a key is one segment of /memory/{namespace}/{key}
MAX_CONTENT = 20_000

KindName = Literal["fact", "note"]


class MemoryIn(Schema):
    namespace: str = Field(pattern=NAMESPACE)
    key: str | None = Field(default=None, pattern=KEY, max_length=200)
    kind: KindName
    content: str = Field(min_length=1, max_length=MAX_CONTENT)
    metadata: dict[str, Any] = {}
    valid_until: datetime | None = None
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[A-Za-z]{2})?$")


class MemoryPatch(Schema):
    content: str | None = Field(default=None, min_length=1, max_length=MAX_CONTENT)
    metadata: dict[str, Any] | None = None
    valid_until: datetime | None = None


class MemoryOut(Schema):
    id: int
    namespace: str
    key: str
    version: int
    kind: str
    status: str
    content: str
    metadata: dict[str, Any]
    language: str
    source: dict[str, Any]
    valid_from: datetime
    valid_until: datetime | None
    superseded_by: int | None = Field(alias="superseded_by_id")
    pinned: bool
    deleted_at: datetime | None
    embedded: bool
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_source(item) -> dict[str, Any]:
        return {
            "kind": item.source_kind,
            "ref": item.source_ref,
            "run": item.source_run_id,
            "seq": item.source_seq,
        }

    @staticmethod
    def resolve_embedded(item) -> bool:
        # Read from the selectors' annotation where there is one: they defer the vector, and
        # touching it would load it, one query per item.
        embedded = getattr(item, "embedded", None)
        return item.embedding is not None if embedded is None else embedded


class MemoryPage(Schema):
    items: list[MemoryOut]
    count: int


class MemoryWrittenOut(MemoryOut):
    outcome: str


class RecallOut(Schema):
    id: int
    namespace: str
    key: str
    version: int
    kind: str
    content: str
    metadata: dict[str, Any]
    score: float
    why: dict[str, int | None]


class ReviewIn(Schema):
    accept: bool


class PinIn(Schema):
    pinned: bool


BulkAction = Literal["expire", "pin", "unpin", "delete", "accept", "reject"]


class BulkIn(Schema):
    action: BulkAction
    ids: list[int] = Field(min_length=1, max_length=500)


class BulkOut(Schema):
    action: str
    changed: int
    skipped: list[dict[str, Any]]


class ImportOut(Schema):
    id: int
    filename: str
    status: str
    total: int
    done: int
    created: int
    unchanged: int
    needs_review: int
    skipped: int
    error: str
    created_at: datetime
    finished_at: datetime | None


class CitationOut(Schema):
    run: int = Field(alias="run_id")
    seq: int
    agent: str = Field(alias="run.agent.slug")
    created_at: datetime
