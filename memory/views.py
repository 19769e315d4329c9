"""The curation console: browse, search, review and change a workspace's memory. Thin."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST
from pydantic import ValidationError as SchemaError

from aios_site.accounts.models import Role
from aios_site.core.actors import Actor
from aios_site.errors import Conflict, error_detail
from aios_site.pages import page_membership, query_without_page, render_page
from memory import selectors, services
from memory.access import access_memory_import, access_memory_item, access_memory_key
from memory.imports import TooLarge
from memory.models import Kind, SourceKind
from memory.schemas import MemoryIn
from memory.services import Source

PAGE_SIZE = 50
FILTERS = ("state", "namespace", "kind", "source", "pinned", "q")


def _filters(request: HttpRequest) -> dict[str, str]:
    values = {name: request.GET.get(name, "").strip() for name in FILTERS}
    if values["state"] not in selectors.STATES:
        values["state"] = "current"
    return values


@login_required
def memory_page(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug)
    workspace_id = membership.workspace_id
    filters = _filters(request)
    items = selectors.memory_list(
        workspace_id=workspace_id,
        state=filters["state"],
        namespace=filters["namespace"] or None,
        kind=filters["kind"] or None,
        source=filters["source"] or None,
        pinned=True if filters["pinned"] else None,
        text=filters["q"] or None,
    )
    recall_query = request.GET.get("recall", "").strip()
    context = {
        "membership": membership,
        "section": "memory",
        "title": "Memory",
        "page": Paginator(items, PAGE_SIZE).get_page(request.GET.get("page")),
        "filters": filters,
        "query": query_without_page(request),
        "states": selectors.STATES,
        "namespaces": selectors.memory_namespaces(workspace_id=workspace_id),
        "kinds": Kind.values,
        "sources": SourceKind.values,
        "recall_query": recall_query,
        "recalled": _recalled(workspace_id, recall_query, request.GET.get("as_of", "")),
        "imports": selectors.memory_import_list(workspace_id=workspace_id, limit=3),
        "waiting_review": selectors.memory_list(
            workspace_id=workspace_id, state="needs_review"
        ).count(),
        "can_curate": membership.has_role(Role.OPERATOR),
        "now": timezone.now(),
    }
    partial = "item-table" if request.htmx and request.htmx.target == "item-table" else "content"
    return render_page(request, "memory/memory.html", context, partial=partial)


def _recalled(workspace_id: int, query: str, as_of: str) -> list[dict] | None:
    if not query:
        return None
    moment = parse_datetime(as_of) if as_of else None
    return selectors.recall(workspace_id=workspace_id, query=query[:1000], as_of=moment)


@login_required
def memory_item_page(request: HttpRequest, slug: str, item_id: int) -> HttpResponse:
    membership = page_membership(request, slug)
    item = access_memory_item(membership=membership, item_id=item_id)
    scope = {
        "workspace_id": membership.workspace_id,
        "namespace": item.namespace,
        "key": item.key,
    }
    context = {
        "membership": membership,
        "section": "memory",
        "title": f"{item.namespace}/{item.key}",
        "item": item,
        "current": selectors.memory_current(**scope),
        "history": selectors.memory_history(**scope),
        "fields": selectors.item_fields(item),
        "used_by": selectors.memory_used_by(**scope),
        "can_curate": membership.has_role(Role.OPERATOR),
        "now": timezone.now(),
    }
    return render_page(request, "memory/item.html", context)


def _edit(request, item) -> object:
    """The text and the structured fields beside it, saved together as one version."""
    content = request.POST.get("content", "").replace("\r\n", "\n")
    MemoryIn(namespace=item.namespace, key=item.key, kind=item.kind, content=content)
    metadata = services.fields_edited(item, request.POST)
    written = services.memory_update(
        item=item, source=Source.human(request.user), content=content, metadata=metadata
    )
    for warning in services.stale_text(item, content, metadata):
        messages.warning(request, warning)
    return written


def _console_action(action: str):
    perform = services.BULK_ACTIONS[action]
    return lambda request, item: perform(item, Actor.of_user(request.user))


# action -> what it does with (request, item); every one needs an operator
ITEM_ACTIONS = {"edit": _edit} | {
    action: _console_action(action) for action in services.BULK_ACTIONS
}


@login_required
@require_POST
def memory_item_action(request: HttpRequest, slug: str, item_id: int, action: str) -> HttpResponse:
    if action not in ITEM_ACTIONS:
        raise Http404("No such action.")
    membership = page_membership(request, slug, Role.OPERATOR)
    item = access_memory_item(membership=membership, item_id=item_id)
    target = item.pk
    try:
        written = ITEM_ACTIONS[action](request, item)
        target = getattr(written, "pk", target)
        messages.success(request, _done_message(action, written))
    except (Conflict, SchemaError, ValidationError) as error:
        messages.error(request, f"Not changed: {error_detail(error)}")
    return redirect("memory_item", slug=slug, item_id=target)


def _done_message(action: str, written) -> str:
    if action == "edit":
        return {
            "created": f"Saved as version {written.version}.",
            "edited": "Note edited.",
            "unchanged": "Nothing changed.",
        }.get(written.outcome, "Saved.")
    return {"delete": "Deleted: gone from recall from now on."}.get(action, "Done.")


@login_required
@require_POST
def memory_create(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug, Role.OPERATOR)
    fields = {name: request.POST.get(name, "").strip() for name in ("namespace", "key", "kind")}
    fields["key"] = fields["key"] or None
    try:
        row = MemoryIn(**fields, content=request.POST.get("content", "").replace("\r\n", "\n"))
        item = services.memory_write(
            workspace=membership.workspace, source=Source.human(request.user), **row.dict()
        )
    except (Conflict, SchemaError) as error:
        messages.error(request, f"Not saved: {error_detail(error)}")
        return redirect("memory", slug=slug)
    messages.success(request, f"Saved {item}.")
    return redirect("memory_item", slug=slug, item_id=item.pk)


@login_required
@require_POST
def memory_bulk(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug, Role.OPERATOR)
    action = request.POST.get("action", "")
    ids = [int(pk) for pk in request.POST.getlist("ids") if pk.isdigit()]
    if action not in services.BULK_ACTIONS or not ids:
        messages.error(request, "Choose an action and at least one item.")
    else:
        changed, skipped = services.memory_bulk(
            workspace=membership.workspace,
            action=action,
            ids=ids,
            actor=Actor.of_user(request.user),
        )
        reasons = "; ".join(f"#{s['id']}: {s['reason']}" for s in skipped)
        messages.success(
            request, f"{action}: {changed} changed." + (f" Skipped {reasons}." if reasons else "")
        )
    back = request.POST.get("back", "")
    return redirect(reverse("memory", args=[slug]) + (f"?{back}" if back else ""))


@login_required
@require_POST
def memory_import(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug, Role.OPERATOR)
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a JSONL or CSV file to import.")
        return redirect("memory", slug=slug)
    try:
        job = services.memory_import_start(
            workspace=membership.workspace,
            user=request.user,
            filename=upload.name,
            data=upload.read(),
            namespace=request.POST.get("namespace", "").strip(),
            kind=request.POST.get("kind", "").strip(),
        )
    except (TooLarge, ValidationError) as error:
        messages.error(request, f"Not imported: {error_detail(error)}")
        return redirect("memory", slug=slug)
    messages.success(request, f"Importing {job.total} items from {job.filename}.")
    return redirect("memory", slug=slug)


@login_required
def memory_import_progress(request: HttpRequest, slug: str, import_id: int) -> HttpResponse:
    """The progress row of one import; the page polls it while the import runs."""
    membership = page_membership(request, slug)
    job = access_memory_import(membership=membership, import_id=import_id)
    # A finished import renders without the polling trigger, which ends the polling.
    return render(request, "memory/memory.html#import-row", {"membership": membership, "job": job})


@login_required
def memory_key_page(request: HttpRequest, slug: str, namespace: str, key: str) -> HttpResponse:
    """A key's page (its current version, else its newest): where cited sources link to."""
    membership = page_membership(request, slug)
    item = access_memory_key(membership=membership, namespace=namespace, key=key)
    return redirect("memory_item", slug=slug, item_id=item.pk)
