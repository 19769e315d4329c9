"""The workspace websocket: pushes rendered htmx partials for live updates.

The ASGI stack checks the Origin header against ALLOWED_HOSTS before this runs; here the
session must belong to a member of the workspace, else the socket is closed unaccepted.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404
from django.template.loader import render_to_string

from aios_site.accounts.access import access_workspace

CLOSE_NOT_ALLOWED = 4403


def workspace_group(workspace_id: int) -> str:
    return f"workspace.{workspace_id}"


class WorkspaceConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        slug = self.scope["url_route"]["kwargs"]["slug"]
        membership = await self._membership(slug)
        if membership is None:
            await self.close(code=CLOSE_NOT_ALLOWED)
            return
        self.group = workspace_group(membership.workspace_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data=render_to_string("shell/live.html#live-status", {"live": True}))

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """Clients only listen; anything they send is ignored."""

    async def workspace_html(self, event: dict) -> None:
        """A rendered partial (with hx-swap-oob) sent to everyone in the workspace."""
        await self.send(text_data=event["html"])

    @database_sync_to_async
    def _membership(self, slug: str):
        try:
            return access_workspace(user=self.scope["user"], slug=slug)
        except Http404:
            return None
