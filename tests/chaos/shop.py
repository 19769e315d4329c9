"""The outside world of a chaos run: a shop (the store simulator) sending new products, stock
running out and customers' messages, as signed webhooks and through the messages API; an
owner writing content briefs through the API and approving every card on the board."""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import DatabaseError, InterfaceError, connection
from django.utils import timezone

from agents.models import Run, RunStatus
from aios_site.errors import Conflict
from approvals.models import Proposal, ProposalStatus
from approvals.services import proposal_approve
from catalog.simulator.products import demo_messages, shopify_product, utc_now
from catalog.simulator.scenarios import Event
from catalog.simulator.store import StoreSimulator

KINDS = ("product", "message", "sold_out", "product", "message", "brief")


@dataclass
class Sent:
    """What the shop sent and AIOS accepted (200 for a webhook, 201 for a message or brief),
    and what it has yet to send again (AIOS was unreachable or answered 5xx)."""

    webhooks: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    briefs: list[int] = field(default_factory=list)
    unanswered: list[tuple] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


class Shop:
    def __init__(
        self, *, sim: StoreSimulator, web_url: str, api_token: str, membership, tag: str
    ) -> None:
        self.sim, self.web_url, self.api_token = sim, web_url, api_token
        self.membership = membership
        self.tag = tag  # in every handle, so two runs in one session never share a product
        self.sent = Sent()
        self._kinds = itertools.cycle(KINDS)
        self._numbers = itertools.count(1)
        self._messages = itertools.cycle(demo_messages())
        self._listed: list[dict] = []  # products sent, whose stock can run out later

    # -- sending ----------------------------------------------------------------------------

    def only(self, *kinds: str) -> None:
        """From now on, send only these kinds of events."""
        self._kinds = itertools.cycle(kinds)

    def send_next(self) -> str:
        kind = next(self._kinds)
        if kind == "sold_out" and not self._listed:
            kind = "product"
        getattr(self, f"_send_{kind}")()
        return kind

    def _send_product(self) -> None:
        n = next(self._numbers)
        product = shopify_product(
            self.sim.shop_domain,
            {
                "handle": f"chaos-{self.tag}-tee-{n}",
                "title": f"Cotton tee no. {n}",
                "body_html": "<p>Cotton tee.</p>",  # thin: the writer drafts a description
                "vendor": "Fern & Flax",
                "product_type": "T-Shirts",
                "tags": "cotton, basics",
                "options": ["Size"],
                "variants": [{"option1": "M", "price": "24.00", "cost": "7.50"}],
            },
            at=utc_now(),
        )
        product["variants"][0]["inventory_quantity"] = 5
        self._listed.append(product)
        self._webhook("products/create", product)

    def _send_sold_out(self) -> None:
        product = self._listed.pop(0)
        variant = product["variants"][0]
        payload = {
            "inventory_item_id": variant["inventory_item_id"],
            "location_id": 61200001,
            "available": 0,
            "updated_at": utc_now().isoformat(),
        }
        self._webhook("inventory_levels/update", payload)

    def _webhook(self, topic: str, payload: dict, webhook_id: str | None = None) -> None:
        webhook_id = webhook_id or str(uuid.uuid4())  # the same on every try of a delivery
        self.sim.apply(Event(topic, payload, utc_now(), topic))
        try:
            status = self.sim.send_webhook(topic, payload, webhook_id=webhook_id)
        except OSError:
            status = None
        retry = ("webhook", topic, payload, webhook_id)
        if self._accepted(status, {200}, retry, f"{topic} {webhook_id}"):
            self.sent.webhooks.append(webhook_id)

    def _send_message(self) -> None:
        n = next(self._numbers)
        message = next(self._messages)
        self._message(
            {
                "store": self.sim.shop_domain,
                "customer_email": message["customer_email"],
                "customer_name": message["customer_name"],
                "channel": message["channel"],
                "subject": message["subject"],
                "body": message["body"],
                "external_id": f"chaos-{self.tag}-{n}",
            }
        )

    def _message(self, body: dict) -> None:
        status, _ = self._api("/api/v1/messages", body)
        label = f"message {body['external_id']}"
        if self._accepted(status, {200, 201}, ("message", body), label):
            self.sent.messages.append(body["external_id"])

    def _send_brief(self) -> None:
        n = next(self._numbers)
        self._brief({"topic": f"Why cotton tees last, part {n}", "channels": ["blog"]})

    def _brief(self, body: dict) -> None:
        status, answer = self._api("/api/v1/briefs", body)
        if self._accepted(status, {201}, ("brief", body), f"brief {body['topic']!r}"):
            self.sent.briefs.append(answer["id"])

    def _accepted(self, status: int | None, ok: set[int], retry: tuple, label: str) -> bool:
        """Whether AIOS took what was sent; what got no answer (or a 5xx) is kept to send
        again, and a refusal is noted: nothing the shop sends may be refused."""
        if status in ok:
            return True
        if status is None or status >= 500:
            self.sent.unanswered.append(retry)
        else:
            self.sent.refused.append(f"{label}: {status}")
        return False

    def resend(self) -> None:
        """Sends again what got no answer: a webhook with its id, as Shopify retries it."""
        unanswered, self.sent.unanswered = self.sent.unanswered, []
        for kind, *rest in unanswered:
            if kind == "webhook":
                topic, payload, webhook_id = rest
                self._webhook(topic, payload, webhook_id)
            elif kind == "message":
                self._message(rest[0])
            else:
                self._brief(rest[0])

    def _api(self, path: str, body: dict) -> tuple[int | None, dict]:
        request = urllib.request.Request(
            f"{self.web_url}{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.api_token}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, {}
        except OSError:
            return None, {}

    # -- the owner --------------------------------------------------------------------------

    def approve_pending(self) -> int:
        """Approves every pending card as the owner; a schedule is edited to go out now.
        While the database is away this approves nothing (and tries again next time)."""
        approved = 0
        try:
            for proposal in Proposal.objects.filter(status=ProposalStatus.PENDING):
                edited = None
                if proposal.effector == "content.schedule_post":
                    now = timezone.now() - timedelta(seconds=1)
                    edited = {**proposal.payload, "publish_at": now.isoformat()}
                try:
                    proposal_approve(
                        proposal=proposal,
                        membership=self.membership,
                        shown_hash=proposal.payload_hash,
                        payload=edited,
                    )
                except Conflict:
                    continue
                approved += 1
        except (DatabaseError, InterfaceError):
            connection.close()  # a new connection next time, once PostgreSQL is back
        return approved

    def busy_runs(self) -> int:
        """Runs queued or running: what the workers have on their hands."""
        try:
            return Run.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).count()
        except (DatabaseError, InterfaceError):
            connection.close()
            return 0
