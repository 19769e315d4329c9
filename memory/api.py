"""The memory API: write, search, read versions, change, delete, import. Thin handlers."""

from __future__ import annotations

from datetime import datetime

from ninja import File, Form, Query, Router, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile

from aios_site.accounts.auth import request_workspace
from aios_site.accounts.models import Role
from aios_site.core.actors import Actor
from aios_site.paging import offset_param
from memory import selectors, services
from memory.access import access_memory_import, access_memory_item, access_memory_key
from memory.imports import MAX_BYTES, TooLarge
from memory.schemas import (
    BulkIn,
    BulkOut,
    CitationOut,
    ImportOut,
    KindName,
    MemoryIn,
    MemoryOut,
    MemoryPage,
    MemoryPatch,
    MemoryWrittenOut,
    PinIn,
    RecallOut,
    ReviewIn,
)
from memory.selectors import State
from memory.services import Source

router = Router(tags=["memory"])

KEY_PATH = "/memory/{namespace}/{key}"


@router.post("/memory", response={201: MemoryWrittenOut, 200: MemoryWrittenOut})
def memory_write(request, payload: MemoryIn):
    """Writes a fact (a new version when the key exists) or a note (edited in place). The
    same content again changes nothing and answers 200."""
    membership = request_workspace(request, role=Role.OPERATOR)
    item = services.memory_write(
        workspace=membership.workspace, source=Source.human(membership.user), **payload.dict()
    )
    return Status(200 if item.outcome == "unchanged" else 201, item)


@router.get("/memory", response=MemoryPage)
def memory_list(
    request,
    limit: int = Query(100, ge=1, le=500),
    offset: int = offset_param(),
    state: State = "current",
    namespace: str | None = None,
    kind: KindName | None = None,
    source: str | None = None,
    pinned: bool | None = None,
    text: str | None = None,
):
    """Browse: items by state (current, needs_review, stale, expired, superseded, rejected,
    deleted, all), namespace, kind, source kind, pinned, and words in key or content."""
    membership = request_workspace(request)
    items = selectors.memory_list(
        workspace_id=membership.workspace_id,
        state=state,
        namespace=namespace,
        kind=kind,
        source=source,
        pinned=pinned,
        text=text,
    )
    return {"items": items[offset : offset + limit], "count": items.count()}


@router.get("/memory/search", response=list[RecallOut])
def memory_search(
    request,
    q: str = Query(..., min_length=1, max_length=1000),
    namespace: list[str] = Query(None),
    kind: list[KindName] = Query(None),
    k: int = Query(8, ge=1, le=50),
    as_of: datetime | None = None,
):
    """Hybrid recall, as an agent's step would get it: by meaning and by words, fused by
    rank; only what was valid at `as_of` (default: now)."""
    membership = request_workspace(request)
    return selectors.recall(
        workspace_id=membership.workspace_id,
        query=q,
        namespaces=namespace or None,
        kinds=kind or None,
        k=k,
        as_of=as_of,
    )


@router.post("/memory/bulk", response=BulkOut)
def memory_bulk(request, payload: BulkIn):
    """One action (expire, pin, unpin, delete, accept, reject) on many items by id."""
    membership = request_workspace(request, role=Role.OPERATOR)
    changed, skipped = services.memory_bulk(
        workspace=membership.workspace,
        action=payload.action,
        ids=payload.ids,
        actor=Actor.of_user(membership.user),
    )
    return {"action": payload.action, "changed": changed, "skipped": skipped}


@router.post("/memory/import", response={202: ImportOut})
def memory_import(
    request,
    file: UploadedFile = File(...),
    namespace: str = Form(""),
    kind: str = Form(""),
):
    """A JSONL or CSV file of items (fields as in POST /memory; `namespace` and `kind` fill
    rows without them). Checked whole first: one bad row and nothing is imported (400, with
    line numbers). Written by a worker; follow it at /memory/imports/{id}."""
    membership = request_workspace(request, role=Role.OPERATOR)
    if file.size and file.size > MAX_BYTES:
        raise HttpError(413, f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        job = services.memory_import_start(
            workspace=membership.workspace,
            user=membership.user,
            filename=file.name or "upload",
            data=file.read(),
            namespace=namespace,
            kind=kind,
        )
    except TooLarge as error:
        raise HttpError(413, str(error)) from error
    return Status(202, job)


@router.get("/memory/imports", response=list[ImportOut])
def memory_import_list(request):
    membership = request_workspace(request)
    return selectors.memory_import_list(workspace_id=membership.workspace_id)


@router.get("/memory/imports/{int:import_id}", response=ImportOut)
def memory_import_status(request, import_id: int):
    membership = request_workspace(request)
    return access_memory_import(membership=membership, import_id=import_id)


@router.get(KEY_PATH, response=MemoryOut)
def memory_get(request, namespace: str, key: str):
    """The current version of the key (404 when none is valid now; see /versions)."""
    membership = request_workspace(request)
    item = selectors.memory_current(
        workspace_id=membership.workspace_id, namespace=namespace, key=key
    )
    if item is None:
        raise HttpError(404, f"no current version of {namespace}/{key}; see its /versions")
    return item


@router.get(KEY_PATH + "/versions", response=list[MemoryOut])
def memory_versions(request, namespace: str, key: str):
    """Every version, newest first, including superseded, rejected and deleted ones."""
    return _key_history(request, namespace, key, selectors.memory_versions)


@router.get(KEY_PATH + "/used-by", response=list[CitationOut])
def memory_used_by(request, namespace: str, key: str):
    """The runs whose steps recalled any version of the key, newest first."""
    return _key_history(request, namespace, key, selectors.memory_used_by)


def _key_history(request, namespace: str, key: str, select) -> list:
    """What `select` finds about a key of the requester's workspace, deleted versions
    included; 404 when the key never existed there."""
    membership = request_workspace(request)
    scope = {"workspace_id": membership.workspace_id, "namespace": namespace, "key": key}
    if not selectors.memory_versions(**scope).exists():
        raise HttpError(404, f"nothing in memory under {namespace}/{key}")
    return list(select(**scope))


@router.patch(KEY_PATH, response=MemoryWrittenOut)
def memory_update(request, namespace: str, key: str, payload: MemoryPatch):
    """A fact gets a new version; a note is edited in place. Omitted fields carry over."""
    membership = request_workspace(request, role=Role.OPERATOR)
    item = access_memory_key(membership=membership, namespace=namespace, key=key)
    return services.memory_update(
        item=item, source=Source.human(membership.user), **payload.dict(exclude_unset=True)
    )


@router.delete(KEY_PATH, response={204: None})
def memory_delete(request, namespace: str, key: str):
    """Soft: gone from recall from now on; history and past `as_of` recalls keep it."""
    membership = request_workspace(request, role=Role.OPERATOR)
    access_memory_key(membership=membership, namespace=namespace, key=key)
    services.memory_forget(
        workspace=membership.workspace,
        namespace=namespace,
        key=key,
        actor=Actor.of_user(membership.user),
    )
    return Status(204, None)


@router.post(KEY_PATH + "/expire", response=MemoryOut)
def memory_expire(request, namespace: str, key: str):
    membership = request_workspace(request, role=Role.OPERATOR)
    item = access_memory_key(membership=membership, namespace=namespace, key=key)
    return services.memory_expire(item=item, actor=Actor.of_user(membership.user))


@router.post(KEY_PATH + "/pin", response=MemoryOut)
def memory_pin(request, namespace: str, key: str, payload: PinIn):
    membership = request_workspace(request, role=Role.OPERATOR)
    item = access_memory_key(membership=membership, namespace=namespace, key=key)
    return services.memory_pin(
        item=item, pinned=payload.pinned, actor=Actor.of_user(membership.user)
    )


@router.post("/memory/items/{int:item_id}/review", response=MemoryOut)
def memory_review(request, item_id: int, payload: ReviewIn):
    """Accepts (it becomes current) or rejects a version waiting for review."""
    membership = request_workspace(request, role=Role.OPERATOR)
    item = access_memory_item(membership=membership, item_id=item_id)
    return services.memory_review(
        item=item, accept=payload.accept, actor=Actor.of_user(membership.user)
    )
