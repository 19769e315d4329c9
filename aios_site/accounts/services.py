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
