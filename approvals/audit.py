"""The audit log: who did what to which object, why, and what it was before and after.

`audit_record` appends to the workspace's hash chain; `audit_verify` recomputes it. Entries
are written in the same transaction as the change they describe, so a change and its record
commit together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

# Who acted, and canonical-JSON hashing, are the shared core's (aios_site/core); named here too.
from aios_site.core.actors import SETUP as SETUP
from aios_site.core.actors import Actor as Actor
from aios_site.core.hashing import digest as digest
from aios_site.core.hashing import plain as plain
from approvals.models import AuditEntry

GENESIS = "0" * 64  # the previous hash of a workspace's first entry
HASHED = [
    "workspace_id",
    "seq",
    "created_at",
    "actor_kind",
    "actor_user_id",
    "actor_label",
    "run_id",
    "action",
    "object_type",
    "object_id",
    "object_label",
    "before",
    "after",
    "reason",
    "prev_hash",
]


def entry_hash(fields: dict[str, Any]) -> str:
    return digest({name: fields[name] for name in HASHED})


def _fields(entry: AuditEntry) -> dict[str, Any]:
    fields = {name: getattr(entry, name) for name in HASHED}
    fields["created_at"] = entry.created_at.astimezone(UTC).isoformat()
    return fields


@transaction.atomic
def audit_record(
    *,
    workspace_id: int,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: Any,
    object_label: str = "",
    before: Any = None,
    after: Any = None,
    reason: str = "",
) -> AuditEntry:
    """Appends one entry to the workspace's chain (serialised per workspace)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"audit:{workspace_id}"]
        )
    last = (
        AuditEntry.objects.filter(workspace_id=workspace_id)
        .order_by("-seq")
        .values_list("seq", "hash")
        .first()
    )
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
    entry = AuditEntry(
        workspace_id=workspace_id,
        seq=seq,
        created_at=timezone.now(),
        actor_kind=actor.kind,
        actor_user_id=actor.user_id,
        actor_label=actor.label[:200],
        run_id=actor.run_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id)[:200],
        object_label=object_label[:200],
        before=plain(before),
        after=plain(after),
        reason=reason,
        prev_hash=prev_hash,
    )
    entry.hash = entry_hash(_fields(entry))
    entry.save(force_insert=True)
    return entry


@dataclass
class Verdict:
    ok: bool
    checked: int
    workspace_id: int | None = None
    seq: int | None = None
    problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad": None
            if self.ok
            else {"workspace": self.workspace_id, "seq": self.seq, "problem": self.problem},
        }


def audit_verify(*, workspace_id: int | None = None) -> Verdict:
    """Recomputes the chain (of one workspace, or of all) and reports the first bad entry:
    a hash that does not match its fields, a link to a previous hash that is not there, or
    a missing sequence number."""
    entries = AuditEntry.objects.order_by("workspace_id", "seq")
    if workspace_id is not None:
        entries = entries.filter(workspace_id=workspace_id)
    checked, current, expected_seq, prev_hash = 0, None, 1, GENESIS
    for entry in entries.iterator(chunk_size=2000):
        if entry.workspace_id != current:
            current, expected_seq, prev_hash = entry.workspace_id, 1, GENESIS
        problem = _problem(entry, expected_seq, prev_hash)
        if problem:
            return Verdict(False, checked, entry.workspace_id, entry.seq, problem)
        checked += 1
        expected_seq, prev_hash = entry.seq + 1, entry.hash
    return Verdict(True, checked)


def _problem(entry: AuditEntry, expected_seq: int, prev_hash: str) -> str:
    if entry.seq != expected_seq:
        return f"entry {expected_seq} is missing (next is {entry.seq})"
    if entry.prev_hash != prev_hash:
        return "its link to the previous entry does not match"
    if entry.hash != entry_hash(_fields(entry)):
        return "its content does not match its hash (edited after it was written)"
    return ""
