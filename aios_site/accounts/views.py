"""The UI shell: home, workspace switching, the section pages and workspace settings."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from aios_site.accounts import access, selectors, services
from aios_site.accounts.auth import SESSION_WORKSPACE
from aios_site.accounts.context_processors import NAV_SECTIONS
from aios_site.accounts.models import Role
from aios_site.core.actors import Actor
from aios_site.errors import error_detail
from aios_site.pages import page_membership, render_page

# What each section will hold, shown while it is empty (every section has its own page now).
SECTION_EMPTY: dict[str, str] = {}


@login_required
def home(request: HttpRequest) -> HttpResponse:
    memberships = list(selectors.membership_list(user=request.user))
    slugs = [m.workspace.slug for m in memberships]
    if not slugs:
        return render(request, "shell/no_workspace.html")
    slug = request.session.get(SESSION_WORKSPACE)
    return redirect("board", slug=slug if slug in slugs else slugs[0])


@login_required
@require_POST
def workspace_switch(request: HttpRequest) -> HttpResponse:
    membership = access.access_workspace(user=request.user, slug=request.POST.get("slug", ""))
    request.session[SESSION_WORKSPACE] = membership.workspace.slug
    return redirect("board", slug=membership.workspace.slug)


@login_required
def section_page(request: HttpRequest, slug: str, section: str) -> HttpResponse:
    if section not in SECTION_EMPTY:
        raise Http404("No such page.")
    membership = page_membership(request, slug)
    title = dict(NAV_SECTIONS)[section]
    return render_page(
        request,
        "shell/section.html",
        {
            "membership": membership,
            "section": section,
            "title": title,
            "empty": SECTION_EMPTY[section],
        },
    )


def _settings_context(membership, *, new_token: str | None = None) -> dict:
    return {
        "membership": membership,
        "section": "settings",
        "title": "Settings",
        "members": selectors.member_list(membership=membership),
        "roles": Role.choices,
        "tokens": selectors.token_list(membership=membership),
        "new_token": new_token,
        "is_owner": membership.has_role(Role.OWNER),
        "preferences": membership,
        "languages": settings.LANGUAGES,
        "time_zones": sorted(zoneinfo.available_timezones()),
        "default_zone": settings.TIME_ZONE,
    }


def _preferences(request, membership) -> str:
    services.preferences_set(
        membership=membership,
        language=request.POST.get("language", ""),
        time_zone=request.POST.get("time_zone", ""),
    )
    return "Saved: pages now use your language and time zone."


def _invite(request, membership) -> str:
    _owner(membership)
    invite = services.member_invite(
        workspace=membership.workspace,
        email=request.POST.get("email", ""),
        role=request.POST.get("role", Role.VIEWER),
        actor=Actor.of_user(request.user),
    )
    link = request.build_absolute_uri(invite.path)
    return f"Invited {invite.membership.user.email}. Send them this link to sign in: {link}"


def _role(request, membership) -> str:
    _owner(membership)
    member = _member(membership, request.POST.get("member", ""))
    services.member_role_set(
        membership=member, role=request.POST.get("role", ""), actor=Actor.of_user(request.user)
    )
    return f"{member.user.email} is now {member.get_role_display().lower()}."


def _remove(request, membership) -> str:
    _owner(membership)
    member = _member(membership, request.POST.get("member", ""))
    services.member_remove(membership=member, actor=Actor.of_user(request.user))
    return f"{member.user.email} is no longer a member."


def _owner(membership) -> None:
    if not membership.has_role(Role.OWNER):
        raise PermissionDenied("Only the owner changes who is a member.")


def _member(membership, member_id: str):
    """A member of the requester's own workspace, or 404."""
    found = selectors.member_list(membership=membership).filter(
        pk=int(member_id) if member_id.isdigit() else 0
    )
    member = found.first()
    if member is None:
        raise Http404("No such member.")
    return member


SETTINGS_ACTIONS = {
    "preferences": _preferences,
    "invite": _invite,
    "role": _role,
    "remove": _remove,
}


@login_required
@require_POST
def settings_action(request: HttpRequest, slug: str, action: str) -> HttpResponse:
    if action not in SETTINGS_ACTIONS:
        raise Http404("No such action.")
    membership = access.access_workspace(user=request.user, slug=slug)
    try:
        messages.success(request, SETTINGS_ACTIONS[action](request, membership))
    except ValidationError as error:
        messages.error(request, f"Not saved: {error_detail(error)}")
    return redirect("settings", slug=slug)


@login_required
def settings_page(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug)
    return render_page(request, "accounts/settings.html", _settings_context(membership))


@login_required
@require_POST
def settings_token_create(request: HttpRequest, slug: str) -> HttpResponse:
    membership = access.access_workspace(user=request.user, slug=slug)
    name = request.POST.get("name", "").strip()[:100] or "API token"
    _, raw = services.token_create(membership=membership, name=name)
    context = _settings_context(membership, new_token=raw)
    if request.htmx:
        return render(request, "accounts/settings.html#tokens", context)
    return render(request, "accounts/settings.html", context)


@login_required
@require_POST
def settings_token_revoke(request: HttpRequest, slug: str, token_id: int) -> HttpResponse:
    membership = access.access_workspace(user=request.user, slug=slug)
    services.token_revoke(token=access.access_token(membership=membership, token_id=token_id))
    if request.htmx:
        return render(request, "accounts/settings.html#tokens", _settings_context(membership))
    return redirect("settings", slug=slug)
