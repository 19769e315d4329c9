"""How /api/v1 knows who is calling: a bearer token, or the browser session with CSRF."""

from __future__ import annotations

from django.http import Http404
from ninja.errors import HttpError
from ninja.security import HttpBearer
from ninja.security import SessionAuth as NinjaSessionAuth

from aios_site.accounts import access
from aios_site.accounts.models import ApiToken, Membership, Role
from aios_site.accounts.services import token_authenticate


class TokenAuth(HttpBearer):
    def authenticate(self, request, token: str) -> ApiToken | None:
        return token_authenticate(raw=token)


class SessionAuth(NinjaSessionAuth):
    """A signed-in browser session, whose writes need the CSRF token. Without a session the
    CSRF check is skipped: such a request has no credentials to abuse, and is told 401 like
    a request without a token, not 403 for a CSRF token it never needed. (The class name is
    the security scheme's name in the OpenAPI document.)"""

    def _get_key(self, request) -> str | None:
        if not request.user.is_authenticated:
            return None
        return super()._get_key(request)


api_auth = [TokenAuth(), SessionAuth(csrf=True)]
# The workspace a browser session is looking at, set by the UI.
SESSION_WORKSPACE = "workspace_slug"


def request_user(request):
    return request.auth.membership.user if isinstance(request.auth, ApiToken) else request.user


def request_membership(request, *, slug: str, role: str = Role.VIEWER) -> Membership:
    """The caller's membership in `slug`. A token only ever reaches its own workspace."""
    if isinstance(request.auth, ApiToken) and request.auth.membership.workspace.slug != slug:
        raise Http404("No such workspace.")
    return access.access_workspace(user=request_user(request), slug=slug, role=role)


def request_workspace(request, *, role: str = Role.VIEWER) -> Membership:
    """For endpoints without a workspace in the path: a token's own workspace, or for a
    session `?workspace=<slug>` (default: the workspace open in the UI)."""
    if isinstance(request.auth, ApiToken):
        return request_membership(request, slug=request.auth.membership.workspace.slug, role=role)
    slug = request.GET.get("workspace") or request.session.get(SESSION_WORKSPACE)
    if not slug:
        raise HttpError(400, "say which workspace: add ?workspace=<slug>")
    return access.access_workspace(user=request.user, slug=slug, role=role)
