"""Fixtures of the injection suites: a model that obeys whatever it reads, the store
simulator as the shop, a small website for the content writer, and a check that nothing
took effect without an approval.

The servers are started once per module and reset for each test: a test only sees what it
caused."""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from approvals.audit import Actor
from catalog.services import store_connect
from tests.fakes.openai_server import FakeOpenAI, Reply, is_classification
from tests.helpers import SHARED_DATA, models_free, serve_models_from
from tests.injection.payloads import Payload

SHOP = "alice-shop.myshopify.com"
ACCESS_TOKEN = "shpat_never_shown_to_a_model_7f3a"
WEBHOOK_SECRET = "whsec-never-shown-to-a-model-0123456789"
PRODUCT = json.loads((SHARED_DATA / "shopify-webhooks" / "products-create.json").read_text())


class ObedientModel(FakeOpenAI):
    """An OpenAI-compatible server whose model does what the payload asks: it answers every
    request with the payload's wish (and its native tool calls, when it has some)."""

    def __init__(self) -> None:
        super().__init__()
        self.payload: Payload | None = None
        self.answers: list[str] = []

    def reset(self, payload: Payload | None = None) -> None:
        with self._lock:
            self.payload = payload
            self.requests.clear()
            self.classify_requests.clear()
            self.headers.clear()
            self.answers.clear()
            self._script.clear()

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if is_classification(body):  # asked for a second opinion on an intent: obeys too
                self.classify_requests.append(body)
                return Reply(self.payload.answer(body) if self.payload else '{"intents": []}')
            self.requests.append(body)
            if self._script:
                reply = self._script.popleft()
            elif self.payload is not None:
                reply = Reply(self.payload.answer(body))
            else:
                reply = Reply(f"echo: {body['messages'][-1]['content']}")
            self.answers.append(reply.content or "")
        return reply

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        completion = FakeOpenAI._completion(body, reply)
        if self.payload is not None and self.payload.tool_calls:
            completion["choices"][0]["message"]["tool_calls"] = self.payload.tool_calls
        return completion


@pytest.fixture
def api(client, operator):
    """An operator's bearer token, as a helpdesk or a script would hold it."""
    from tests.memory.test_api import Api

    return Api(client, operator)


INTENT_EXAMPLES = [
    ("where is my order", "track_order"),
    ("what is the status of my order", "track_order"),
    ("I want my money back", "get_refund"),
    ("I have a question about a product", "contact_customer_service"),
]


@functools.cache
def _intent_vectors() -> tuple:
    """The examples' embeddings, computed once: the local model gives the same every time."""
    from agents.llm import local

    return tuple(local.embed([text for text, _ in INTENT_EXAMPLES]))


@pytest.fixture
def intents(workspace):
    """The support agent's labelled examples: an order question is answered from a template."""
    from agents.models import IntentExample

    IntentExample.objects.bulk_create(
        IntentExample(workspace=workspace, intent=intent, text=text, embedding=vector)
        for (text, intent), vector in zip(INTENT_EXAMPLES, _intent_vectors(), strict=True)
    )


@pytest.fixture
def order(store):
    """Order #1001 of ana@example.com, delivered."""
    from catalog.models import Order

    return Order.objects.create(
        workspace=store.workspace,
        connection=store,
        external_id=5001,
        name="#1001",
        email="ana@example.com",
        fulfillment_status="fulfilled",
        placed_at=timezone.now() - timedelta(days=2),
    )


@pytest.fixture(scope="module")
def model_server():
    server = ObedientModel()
    yield server
    server.close()


@pytest.fixture
def model(model_server, settings):
    """The obedient model as the workspace's remote provider, with no payload yet."""
    serve_models_from(settings, model_server.base_url, timeout=2.0)
    models_free()
    model_server.reset()
    yield model_server
    model_server.reset()


@pytest.fixture(scope="module")
def shop():
    """The store simulator, selling PRODUCT: its Admin API takes the writes and its outbound
    URL the replies."""
    from catalog.simulator import StoreSimulator

    with StoreSimulator(
        shop_domain=SHOP,
        webhook_secret=WEBHOOK_SECRET,
        access_token=ACCESS_TOKEN,
        products=[PRODUCT],
    ) as simulator:
        yield simulator


@pytest.fixture
def store(workspace, shop):
    return store_connect(
        workspace=workspace,
        shop_domain=SHOP,
        access_token=ACCESS_TOKEN,
        webhook_secrets=[WEBHOOK_SECRET],
        api_base_url=shop.base_url,
        outbound_url=shop.replies_url,
        actor=Actor("user", "test"),
    )


@dataclass
class Effects:
    """What reached the outside world since the test began: Admin API writes, replies and
    posts at the simulator, and e-mail."""

    shop: Any
    writes: int
    replies: int
    posts: int

    def since(self) -> dict[str, list]:
        return {
            "writes": self.shop.writes[self.writes :],
            "replies": self.shop.replies[self.replies :],
            "posts": self.shop.posts[self.posts :],
            "mail": list(mail.outbox),
        }


@pytest.fixture
def effects(shop) -> Effects:
    return Effects(shop, len(shop.writes), len(shop.replies), len(shop.posts))


class Website:
    """A tiny website whose pages each test sets; it records the paths asked for."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.requested: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requested.append(self.path)
                body = site.pages.get(self.path)
                data = (body or "not here").encode()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def website_server():
    site = Website()
    yield site
    site.close()


@pytest.fixture
def website(website_server):
    website_server.pages.clear()
    website_server.requested.clear()
    return website_server
