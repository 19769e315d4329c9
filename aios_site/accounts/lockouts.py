"""Login throttling (django-axes): what a locked-out person sees, which address counts, and
the record a lockout leaves in the audit log of the account's workspaces.

Failures count per account and per address (settings.AXES_LOCKOUT_PARAMETERS): guessing
one owner's password from many addresses locks that account; one address guessing many
accounts locks the address. Either way the lock lifts by itself after AXES_COOLOFF_TIME.
"""

from __future__ import annotations

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest, JsonResponse
from django.shortcuts import render

from aios_site.core.actors import Actor
from aios_site.core.audit import audit_record

THROTTLE = Actor.system("login throttle")


def _cooloff_minutes() -> int:
    return round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)


def lockout_message() -> str:
    return (
        "Too many failed logins for this account or from this address. To keep the account "
        f"safe, logging in is paused: try again in {_cooloff_minutes()} minutes."
    )


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get(
        "Accept", ""
    )


def lockout_response(request: HttpRequest, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the login page again, saying why (429), or JSON for API use."""
    status = settings.AXES_HTTP_RESPONSE_CODE
    if _wants_json(request):
        return JsonResponse({"detail": lockout_message()}, status=status)
    context = {"locked_out": lockout_message(), "next": request.POST.get("next", "")}
    return render(request, "accounts/login.html", context, status=status)


def client_address(request: HttpRequest) -> str | None:
    """AXES_CLIENT_IP_CALLABLE. Behind the proxy README's production setup names, the peer
    is the proxy: the client is the address the proxy appended last to X-Forwarded-For
    (what a client sends itself comes before it, and cannot be trusted)."""
    if settings.AIOS_BEHIND_PROXY:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if hops := [hop.strip() for hop in forwarded.split(",") if hop.strip()]:
            return hops[-1]
    return request.META.get("REMOTE_ADDR")


def username_key(request: HttpRequest, credentials: dict | None) -> str:
    """AXES_USERNAME_CALLABLE: "Alice@Shop.example " counts as the same account."""
    raw = (credentials or {}).get("username") or request.POST.get("username", "")
    return str(raw).strip().lower()


def _record(user, *, address: str) -> None:
    reason = (
        f"{settings.AXES_FAILURE_LIMIT} failed logins in a row (the last from {address}); "
        f"logging in is paused for {_cooloff_minutes()} minutes"
    )
    with transaction.atomic():
        for workspace_id in user.memberships.values_list("workspace_id", flat=True):
            audit_record(
                workspace_id=workspace_id,
                actor=THROTTLE,
                action="login.locked_out",
                object_type="user",
                object_id=user.pk,
                object_label=user.get_username(),
                reason=reason,
            )


@receiver(user_locked_out, dispatch_uid="accounts.lockout_audit")
def _locked_out(sender, request, username, ip_address, **kwargs) -> None:
    """Once per lockout: axes signals every refused attempt while it lasts."""
    if getattr(request, "axes_failures_since_start", None) != settings.AXES_FAILURE_LIMIT:
        return
    user = get_user_model().objects.filter(username__iexact=username or "").first()
    if user is not None:
        _record(user, address=ip_address or "an unknown address")
