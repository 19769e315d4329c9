"""The audit append, as every app calls it.

The log itself (its table, hash chain and verification) is governance's (approvals/audit.py),
which plugs its writer in when Django starts; every app records through `audit_record` here,
so no app needs to import approvals to say what it did. An entry is written in the caller's
transaction: the change and its record commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_writer: Callable[..., Any] | None = None


def audit_writer(writer: Callable[..., Any]) -> None:
    global _writer
    _writer = writer


def audit_record(**entry: Any) -> Any:
    """Appends one entry to the workspace's chain: `workspace_id`, `actor` (an Actor),
    `action`, `object_type`, `object_id`, and optionally `object_label`, `before`, `after`
    and `reason` (the writer's own signature checks them)."""
    if _writer is None:
        raise RuntimeError("no audit log is installed (the approvals app records it)")
    return _writer(**entry)
