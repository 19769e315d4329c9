"""Access helpers for memory: scoped to the requester's workspace, else 404."""

from __future__ import annotations

from django.http import Http404

from aios_site.accounts.models import Membership
from memory import selectors
from memory.models import MemoryImport, MemoryItem


def access_memory_item(*, membership: Membership, item_id: int) -> MemoryItem:
    item = selectors.memory_item(workspace_id=membership.workspace_id, item_id=item_id)
    if item is None:
        raise Http404("No such memory item.")
    return item


def access_memory_key(*, membership: Membership, namespace: str, key: str) -> MemoryItem:
    """The current item of a key, else its newest version that is not deleted."""
    scope = {"workspace_id": membership.workspace_id, "namespace": namespace, "key": key}
    item = selectors.memory_current(**scope) or selectors.memory_latest(**scope)
    if item is None:
        raise Http404(f"Nothing in memory under {namespace}/{key}.")
    return item


def access_memory_import(*, membership: Membership, import_id: int) -> MemoryImport:
    job = selectors.memory_import(workspace_id=membership.workspace_id, import_id=import_id)
    if job is None:
        raise Http404("No such import.")
    return job
