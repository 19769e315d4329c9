"""What every workspace page view does: find the member, remember the workspace, render."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from aios_site.accounts.access import access_workspace
from aios_site.accounts.auth import SESSION_WORKSPACE
from aios_site.accounts.middleware import member_locale_activate
from aios_site.accounts.models import Membership, Role


def page_membership(request: HttpRequest, slug: str, role: str = Role.VIEWER) -> Membership:
    """The requester's membership in the page's workspace, which becomes the one open in the UI."""
    membership = access_workspace(user=request.user, slug=slug, role=role)
    request.session[SESSION_WORKSPACE] = slug
    member_locale_activate(request, membership)
    return membership


def render_page(
    request: HttpRequest, template: str, context: dict, *, partial: str = "content"
) -> HttpResponse:
    """The full page, or only its named partial for an htmx navigation."""
    if request.htmx and not request.htmx.boosted:
        template = f"{template}#{partial}"
    return render(request, template, context)


def query_without_page(request: HttpRequest) -> str:
    """The page's filters as a query string, for links to its other pages."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()
