"""Writes: workspaces, memberships, API tokens and the demo workspace."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from aios_site.accounts.models import ApiToken, Membership, Role, Workspace

TOKEN_PREFIX = "aios_"  # noqa: S105 - a marker, not a secret
DEMO_SLUG = "demo"
DEMO_NAME = "Demo Shop"
DEMO_EMAIL = "owner@demo-shop.example"
# A token's last use is recorded at most this often, so API calls do not write on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def user_ensure(*, email: str):
    """The user with this email (also their username), created without a password if missing."""
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError as error:
        raise ValueError(f"not a valid email address: {email!r}") from error
    user, created = get_user_model().objects.get_or_create(
        username=email, defaults={"email": email}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def membership_ensure(*, workspace: Workspace, user, role: str | None = None) -> Membership:
    """Adds `user` to `workspace`; with `role`, also sets the role of an existing member."""
    membership, created = Membership.objects.get_or_create(
        workspace=workspace, user=user, defaults={"role": role or Role.VIEWER}
    )
    if not created and role and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def workspace_create(*, name: str, slug: str, owner) -> Workspace:
    with transaction.atomic():
        workspace = Workspace.objects.create(name=name, slug=slug)
        Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    return workspace


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_create(*, membership: Membership, name: str) -> tuple[ApiToken, str]:
    """A new token; the raw value is returned once and never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        membership=membership, name=name, prefix=raw[:12], digest=token_digest(raw)
    )
    return token, raw


def token_revoke(*, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


def token_authenticate(*, raw: str) -> ApiToken | None:
    """The active token for a bearer value, or None."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("membership__workspace", "membership__user")
        .filter(digest=token_digest(raw), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.membership.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


@dataclass(frozen=True)
class DemoLogin:
    workspace: Workspace
    email: str
    password: str | None  # set only when the password was (re)created by this call


def demo_ensure(*, reset_password: bool = False) -> DemoLogin:
    """The demo workspace and its owner; idempotent. A password is made only when new or reset."""
    with transaction.atomic():
        user = user_ensure(email=DEMO_EMAIL)
        workspace = Workspace.objects.filter(slug=DEMO_SLUG).first()
        if workspace is None:
            workspace = workspace_create(name=DEMO_NAME, slug=DEMO_SLUG, owner=user)
        membership_ensure(workspace=workspace, user=user, role=Role.OWNER)
        password = None
        if reset_password or not user.has_usable_password():
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.save(update_fields=["password"])
    return DemoLogin(workspace=workspace, email=DEMO_EMAIL, password=password)


# -- a member's own preferences ---------------------------------------------------------------


def preferences_set(*, membership: Membership, language: str, time_zone: str) -> Membership:
    """Sets how the member reads the workspace. ValidationError for a language the site does
    not offer or a time zone the IANA database does not know."""
    import zoneinfo

    from django.conf import settings

    if language and language not in dict(settings.LANGUAGES):
        raise ValidationError(f"unknown language {language!r}")
    if time_zone and time_zone not in zoneinfo.available_timezones():
        raise ValidationError(f"unknown time zone {time_zone!r} (such as Europe/Madrid)")
    membership.language, membership.time_zone = language, time_zone
    membership.save(update_fields=["language", "time_zone"])
    return membership


# -- members ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invite:
    membership: Membership
    path: str  # where the invited person sets their password and signs in, valid for 3 days


def member_invite(*, workspace: Workspace, email: str, role: str, actor) -> Invite:
    """Adds the person with `email` to the workspace with `role` and makes them a one-time
    link to choose their password (Django's password-reset token: it stops working once used,
    or once they sign in). Someone with a password already is added, and their link is the
    login page."""
    from django.contrib.auth.tokens import default_token_generator
    from django.urls import reverse
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    role = _role(role)
    try:
        user = user_ensure(email=email)
    except ValueError as error:
        raise ValidationError(str(error)) from error
    if Membership.objects.filter(workspace=workspace, user=user).exists():
        raise ValidationError(f"{user.email} is a member already: change their role instead")
    membership = Membership.objects.create(workspace=workspace, user=user, role=role)
    _member_audit(membership, actor, "member.invite", after={"role": role})
    if user.has_usable_password():
        return Invite(membership, reverse("login"))
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return Invite(membership, reverse("invite_accept", args=[uid, token]))


def member_role_set(*, membership: Membership, role: str, actor) -> Membership:
    """Changes a member's role; a workspace always keeps an owner."""
    role = _role(role)
    with transaction.atomic():
        before = membership.role
        _keep_an_owner(membership, role_after=role)
        membership.role = role
        membership.save(update_fields=["role"])
        _member_audit(
            membership, actor, "member.role", before={"role": before}, after={"role": role}
        )
    return membership


def member_remove(*, membership: Membership, actor) -> None:
    """Takes a member out of the workspace, with their API tokens; not the last owner."""
    with transaction.atomic():
        _keep_an_owner(membership, role_after=None)
        _member_audit(membership, actor, "member.remove", before={"role": membership.role})
        membership.delete()


def _keep_an_owner(membership: Membership, *, role_after: str | None) -> None:
    """ValidationError when the change would leave the workspace without an owner (the
    owners are locked, so two owners stepping down at once cannot both pass)."""
    owners = Membership.objects.select_for_update().filter(
        workspace_id=membership.workspace_id, role=Role.OWNER
    )
    stepping_down = membership.role == Role.OWNER and role_after != Role.OWNER
    if stepping_down and owners.count() == 1:
        raise ValidationError("a workspace needs an owner: make someone else owner first")


def _member_audit(membership: Membership, actor, action: str, **change) -> None:
    from aios_site.core.audit import audit_record

    audit_record(
        workspace_id=membership.workspace_id,
        actor=actor,
        action=action,
        object_type="member",
        object_id=membership.user.email,
        **change,
    )


def _role(role: str) -> str:
    if role not in Role.values:
        raise ValidationError(f"unknown role {role!r} (one of {', '.join(Role.values)})")
    return role
