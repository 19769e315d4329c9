"""A membership removed or changed, however it was (a service, the admin, a deleted user or
workspace), reaches the member's open websockets at once."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from aios_site.accounts.models import Membership
from aios_site.live import membership_changed


@receiver(post_save, sender=Membership, dispatch_uid="membership_saved_live")
def _membership_saved(sender, instance: Membership, created: bool, **kwargs) -> None:
    if not created:  # a new member has no socket yet
        membership_changed(workspace_id=instance.workspace_id, user_id=instance.user_id)


@receiver(post_delete, sender=Membership, dispatch_uid="membership_deleted_live")
def _membership_deleted(sender, instance: Membership, **kwargs) -> None:
    membership_changed(workspace_id=instance.workspace_id, user_id=instance.user_id)
