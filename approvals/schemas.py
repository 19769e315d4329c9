"""What the governance API takes and returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Schema


class AuditOut(Schema):
    seq: int
    created_at: datetime
    actor_kind: str
    actor_label: str
    actor_user_id: int | None
    run_id: int | None
    action: str
    object_type: str
    object_id: str
    object_label: str
    before: Any
    after: Any
    reason: str
    prev_hash: str
    hash: str


class AuditPage(Schema):
    items: list[AuditOut]
    count: int


class BadEntryOut(Schema):
    workspace: int
    seq: int
    problem: str


class VerifyOut(Schema):
    ok: bool
    checked: int
    first_bad: BadEntryOut | None
