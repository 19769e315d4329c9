"""The audit page. Thin."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse

from aios_site.pages import page_membership, query_without_page, render_page
from approvals import selectors
from approvals.audit import audit_verify

PAGE_SIZE = 50
FILTERS = ("action", "object_type", "object_id", "actor")


@login_required
def audit_page(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug)
    filters = {name: request.GET.get(name, "").strip() for name in FILTERS}
    entries = selectors.audit_list(
        workspace_id=membership.workspace_id, **{k: v or None for k, v in filters.items()}
    )
    context = {
        "membership": membership,
        "section": "audit",
        "title": "Audit",
        "page": Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page")),
        "filters": filters,
        "query": query_without_page(request),
        "actions": selectors.audit_actions(workspace_id=membership.workspace_id),
        "verdict": audit_verify(workspace_id=membership.workspace_id)
        if request.GET.get("verify")
        else None,
    }
    partial = "audit-table" if request.htmx and request.htmx.target == "audit-table" else "content"
    return render_page(request, "approvals/audit.html", context, partial=partial)
