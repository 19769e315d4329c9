"""Pushing rendered partials to the browsers watching a workspace."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.template.loader import render_to_string

from aios_site.consumers import workspace_group


def workspace_broadcast(*, workspace_id: int, template: str, context: dict) -> None:
    """Renders `template` (a `page.html#partial` with hx-swap-oob) and sends it to the workspace."""
    html = render_to_string(template, context)
    async_to_sync(get_channel_layer().group_send)(
        workspace_group(workspace_id), {"type": "workspace.html", "html": html}
    )
