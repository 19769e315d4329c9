"""Websocket clients for tests: the real ASGI application, authenticated by a real session."""

from __future__ import annotations

import asyncio

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client

from aios_site.asgi import application

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


async def connect(path: str, headers: list[tuple[bytes, bytes]]):
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    if not connected:
        await communicator.wait(timeout=1)  # let the refused connection's app instance finish
    return communicator, connected, code


def run(coroutine):
    async def and_close_connections():
        try:
            return await coroutine
        finally:
            # The thread that served database calls keeps its connection otherwise.
            await sync_to_async(connections.close_all)()

    return asyncio.run(and_close_connections())


async def frame_with(ws, text: str, *, frames: int = 10) -> str:
    """The first frame that has `text`: other pushes of the workspace (a run's row, a
    counter) may come before it."""
    for _ in range(frames):
        frame = await ws.receive_from(timeout=5)
        if text in frame:
            return frame
    raise AssertionError(f"no frame with {text!r} in {frames}")
