"""Pushing rendered partials to the browsers watching a workspace."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.template.loader import render_to_string

from aios_site.core.groups import member_group, workspace_group

logger = logging.getLogger(__name__)


def workspace_broadcast(*, workspace_id: int, template: str, context: dict) -> None:
    """Renders `template` (a `page.html#partial` with hx-swap-oob) and sends it to the workspace."""
    html = render_to_string(template, context)
    async_to_sync(get_channel_layer().group_send)(
        workspace_group(workspace_id), {"type": "workspace.html", "html": html}
    )


def membership_changed(*, workspace_id: int, user_id: int) -> None:
    """Tells the member's open sockets in the workspace to check their access again, once the
    change is committed (a socket that checked before would still find the membership)."""

    def announce() -> None:
        try:
            async_to_sync(get_channel_layer().group_send)(
                member_group(workspace_id, user_id), {"type": "membership.changed"}
            )
        except Exception:  # the change is committed; a dead layer has no socket to tell
            logger.exception("could not announce the membership change of user %s", user_id)

    transaction.on_commit(announce)
