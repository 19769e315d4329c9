"""The workspace websocket: pushes rendered htmx partials for live updates.

The ASGI stack checks the Origin header against ALLOWED_HOSTS before this runs; here the
session must belong to a member of the workspace, else the socket is closed unaccepted.
"""

from __future__ import annotations

import contextlib
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import Http404
from django.template.loader import render_to_string
from django.utils import timezone, translation

from aios_site.accounts.access import access_workspace
from aios_site.accounts.middleware import zone_named
from aios_site.accounts.models import Role
from aios_site.core.groups import member_group, run_group, workspace_group

CLOSE_NOT_ALLOWED = 4403


class WorkspaceConsumer(AsyncWebsocketConsumer):
    """Everything that changes in one workspace: run rows, board cards, the live badge."""

    async def connect(self) -> None:
        group = await self._group(**self.scope["url_route"]["kwargs"])
        if group is None:
            await self.close(code=CLOSE_NOT_ALLOWED)
            return
        self.group = group
        self.member = member_group(self.workspace_id, self.scope["user"].pk)
        self.removed = False
        await self.channel_layer.group_add(self.member, self.channel_name)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.on_accepted()

    async def on_accepted(self) -> None:
        await self.send(text_data=render_to_string("shell/live.html#live-status", {"live": True}))

    async def disconnect(self, code: int) -> None:
        await self._leave_groups()

    async def _leave_groups(self) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await self.channel_layer.group_discard(self.member, self.channel_name)

    async def send(self, text_data=None, bytes_data=None, close=False) -> None:
        # Pushes already queued for this socket when its member was removed are dropped.
        if getattr(self, "removed", False) and not close:
            return
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    async def membership_changed(self, event: dict) -> None:
        """The member was removed or their role changed: checked again now, not at the next
        connect. A removed member's socket is closed; a changed role applies to what follows."""
        if await self._group(**self.scope["url_route"]["kwargs"]) is not None:
            return
        self.removed = True
        await self._leave_groups()
        await self.close(code=CLOSE_NOT_ALLOWED)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """Clients only listen; anything they send is ignored."""

    async def workspace_html(self, event: dict) -> None:
        """A rendered partial (with hx-swap-oob) sent to everyone in the workspace."""
        await self.send(text_data=event["html"])

    async def run_changed(self, event: dict) -> None:
        """A run of the workspace changed: its row in the runs list."""
        from agents.events import render_run_row

        html = await database_sync_to_async(render_run_row)(
            event["run_id"], created=event["created"]
        )
        if html:
            await self.send(text_data=html)

    async def proposal_changed(self, event: dict) -> None:
        """A proposal of the workspace was made or changed: its card on the board."""
        from approvals.events import render_card

        html = await database_sync_to_async(self._in_members_locale)(
            render_card, event["proposal_id"], created=event["created"], can_decide=self.can_decide
        )
        if html:
            await self.send(text_data=html)

    def _in_members_locale(self, render, *args, **kwargs) -> str:
        """What `render` makes, in the member's language and on their clock, as their pages."""
        language, zone = getattr(self, "locale", ("", ""))
        speaking = translation.override(language) if language else contextlib.nullcontext()
        with speaking, timezone.override(zone_named(zone)):
            return render(*args, **kwargs)

    @database_sync_to_async
    def _group(self, slug: str) -> str | None:
        try:
            membership = access_workspace(user=self.scope["user"], slug=slug)
        except Http404:
            return None
        self.can_decide = membership.has_role(Role.OPERATOR)
        self.locale = (membership.language, membership.time_zone)
        self.workspace_id = membership.workspace_id
        return workspace_group(membership.workspace_id)


class RunConsumer(WorkspaceConsumer):
    """One run's page: its status, timeline and steps as they change."""

    async def on_accepted(self) -> None:
        """The run may have moved on (or finished) between rendering the page and this socket
        joining its group, announced to nobody: then the page gets the run as it is now."""
        shown = parse_qs(self.scope["query_string"].decode()).get("shown", [""])[0]
        if shown != await self._progress():
            await self.run_changed({"run_id": self.run_id})

    async def run_changed(self, event: dict) -> None:
        from agents.events import render_run_live

        html = await database_sync_to_async(render_run_live)(
            event["run_id"], can_operate=self.can_operate
        )
        if html:
            await self.send(text_data=html)

    async def run_streamed(self, event: dict) -> None:
        from agents.events import render_run_stream

        await self.send(text_data=render_run_stream(step=event["step"], text=event["text"]))

    @database_sync_to_async
    def _progress(self) -> str:
        from agents.models import Run

        return Run.objects.only("status", "next_seq").get(pk=self.run_id).progress

    @database_sync_to_async
    def _group(self, slug: str, run_id: int) -> str | None:
        from agents.access import access_run

        try:
            membership = access_workspace(user=self.scope["user"], slug=slug)
            self.run_id = access_run(membership=membership, run_id=run_id).pk
            self.can_operate = membership.has_role(Role.OPERATOR)
            self.workspace_id = membership.workspace_id
        except Http404:
            return None
        return run_group(self.run_id)
