"""The webhook endpoint's fast lane in the ASGI application.

Shopify deliveries are the one request a shop sends in bursts (a bulk edit, a sale), and
they carry their own authentication: an HMAC of the body, not a session, a CSRF token or a
bearer token. So `POST /api/v1/webhooks/shopify` is answered here, before Django's
middleware stack and request handler, by the same `webhook_receive` the API route (its
documented form, and what the test client reaches) calls. What the middleware would have
done that still applies here — refusing a Host not in ALLOWED_HOSTS, a body over the limit —
is done here too.
"""

from __future__ import annotations

import json
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http.request import split_domain_port, validate_host

from catalog.webhooks import (
    MAX_BODY,
    TOO_LARGE,
    Receipt,
    length_refusal,
    webhook_receive,
)

PATH = "/api/v1/webhooks/shopify"
log = logging.getLogger(__name__)


class WebhookFastLane:
    """ASGI middleware: webhook deliveries here, everything else to `app`."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == PATH:
            await _deliver(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _deliver(scope, receive, send) -> None:
    headers = {name.decode("latin-1").lower(): v.decode("latin-1") for name, v in scope["headers"]}
    receipt = _refusal(headers)
    if receipt is None:
        body = await _read_body(receive)
        if body is None:
            receipt = TOO_LARGE
        else:
            receipt = await sync_to_async(_receive, thread_sensitive=False)(headers, body)
    await _answer(send, receipt)


def _refusal(headers: dict[str, str]) -> Receipt | None:
    domain, _port = split_domain_port(headers.get("host", ""))
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return Receipt(400, "the Host header is not one this server answers to")
    return length_refusal(headers.get("content-length", ""))


async def _read_body(receive) -> bytes | None:
    """The whole body, or None as soon as it grows past the limit."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _receive(headers: dict[str, str], body: bytes) -> Receipt:
    # Runs in a pooled thread: the connection goes back to the pool when it is done, as
    # Django's request_finished would return it.
    close_old_connections()
    try:
        return webhook_receive(headers=headers, body=body)
    except Exception:
        log.exception("webhook delivery could not be stored")
        return Receipt(500, "the delivery could not be stored; Shopify will retry it")
    finally:
        close_old_connections()


async def _answer(send, receipt: Receipt) -> None:
    body = json.dumps({"detail": receipt.detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": receipt.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
