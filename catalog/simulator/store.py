"""The store's HTTP side: the Admin API it serves, the replies it takes, the webhooks and
messages it sends."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import queue
import re
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from catalog.simulator.products import API_VERSION, demo_products, int_or_zero, iso, money, utc_now
from catalog.simulator.scenarios import MESSAGE, Event

ADMIN_PATH = re.compile(
    r"/admin/api/(?:\d{4}-\d{2}|unstable)/(?P<resource>products|variants)(?:/(?P<id>\d{1,19}))?\.json"
)
NOT_FOUND_BODY = {"errors": "Not Found"}
MAX_BODY = 5 * 1024 * 1024
FAULT_TEXT = {
    429: "Exceeded 2 calls per second for api client. Reduce request rates to resume "
    "uninterrupted service.",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # by lower-case name
    body: bytes


@dataclass(frozen=True)
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


NOT_FOUND = Response(404, NOT_FOUND_BODY)

WRITABLE = {
    "product": {"title", "body_html", "vendor", "product_type", "tags", "status", "handle"},
    "variant": {
        "price",
        "compare_at_price",
        "sku",
        "barcode",
        "inventory_policy",
        "taxable",
        "grams",
        "option1",
        "option2",
        "option3",
    },
}


class StoreSimulator:
    """One shop. `start()` serves it on a daemon thread; `send_*` talk to AIOS at `target`."""

    def __init__(
        self,
        *,
        shop_domain: str,
        webhook_secret: str,
        access_token: str,
        target: str | None = None,
        api_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        products: list[dict[str, Any]] | None = None,
        api_version: str = API_VERSION,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        if target and not target.startswith(("http://", "https://")):
            raise ValueError(f"the target must be an http(s) URL: {target!r}")
        self.shop_domain = shop_domain.strip().lower()
        self.webhook_secret = webhook_secret
        self.access_token = access_token
        self.target = target.rstrip("/") if target else None
        self.api_token = api_token
        self.api_version = api_version
        self.log = log
        self._address = (host, port)
        catalog = demo_products(self.shop_domain) if products is None else products
        self._products = {product["id"]: copy.deepcopy(product) for product in catalog}
        self._writes: list[dict[str, Any]] = []
        self._replies: list[dict[str, Any]] = []
        self._posts: list[dict[str, Any]] = []
        self._results: dict[tuple[str, str], Any] = {}  # (area, Idempotency-Key) -> first answer
        self._faults: list[list[Any]] = []  # [status, how many more, retry_after]
        self._lock = threading.RLock()
        self._outbox: queue.Queue[tuple[str, dict] | None] = queue.Queue()
        self._server: ThreadingHTTPServer | None = None
        self._told_no_api_token = False

    def start(self) -> StoreSimulator:
        self._server = ThreadingHTTPServer(self._address, _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="store-sim", daemon=True).start()
        threading.Thread(target=self._send_outbox, name="store-sim-outbox", daemon=True).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._outbox.put(None)

    def __enter__(self) -> StoreSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def replies_url(self) -> str:
        return f"{self.base_url}/outbound/replies"

    @property
    def posts_url(self) -> str:
        return f"{self.base_url}/outbound/posts"

    # -- inspection and faults ----------------------------------------------------------------

    @property
    def writes(self) -> list[dict[str, Any]]:
        """Admin API writes that took effect: method, path, body, idempotency_key, at."""
        with self._lock:
            return copy.deepcopy(self._writes)

    @property
    def replies(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._replies)

    @property
    def posts(self) -> list[dict[str, Any]]:
        """Posts AIOS published to the shop's blog (its `publish` webhook endpoint)."""
        with self._lock:
            return copy.deepcopy(self._posts)

    @property
    def products(self) -> list[dict[str, Any]]:
        """The catalog as the shop has it now, in catalog order."""
        with self._lock:
            return copy.deepcopy(list(self._products.values()))

    def product(self, product_id: int) -> dict[str, Any] | None:
        with self._lock:
            return copy.deepcopy(self._products.get(product_id))

    def fail_next(self, status: int, count: int = 1, retry_after: float | None = None) -> None:
        """The next `count` Admin API requests answer `status` (with Retry-After when given)
        and change nothing."""
        if not 400 <= status <= 599 or count < 1:
            raise ValueError("a fault is a 4xx or 5xx status, at least once")
        with self._lock:
            self._faults.append([status, count, retry_after])

    # -- answering ----------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answers one request; the HTTP handler only parses and writes."""
        if request.path.startswith("/admin/"):
            return self._admin(request)
        route = CONTROL_ROUTES.get((request.method, request.path))
        return route(self, request) if route else NOT_FOUND

    def _admin(self, request: Request) -> Response:
        fault = self._fault_take()
        if fault is not None:
            return fault
        token = request.headers.get("x-shopify-access-token", "")
        if not hmac.compare_digest(token.encode(), self.access_token.encode()):
            return Response(401, {"errors": "[API] Invalid API key or access token"})
        match = ADMIN_PATH.fullmatch(request.path)
        if match is None:
            return NOT_FOUND
        resource, object_id = match["resource"], match["id"]
        if request.method == "GET":
            return self._admin_read(resource, object_id, request.query)
        if request.method == "PUT" and object_id:
            return self._admin_write(request, resource, int(object_id))
        return Response(405, {"errors": "Method Not Allowed"})

    def _fault_take(self) -> Response | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault[1] -= 1
            if fault[1] == 0:
                self._faults.pop(0)
        status, _, retry_after = fault
        headers = {"Retry-After": str(float(retry_after))} if retry_after is not None else {}
        return Response(
            status, {"errors": FAULT_TEXT.get(status, "Internal Server Error")}, headers
        )

    def _admin_read(self, resource: str, object_id: str | None, query: dict) -> Response:
        with self._lock:
            if object_id is None:
                if resource != "products":
                    return NOT_FOUND
                return self._product_page(query)
            if resource == "products":
                found = self._products.get(int(object_id))
            else:
                found = (self._variant_owner(int(object_id)) or (None, None))[1]
            if found is None:
                return NOT_FOUND
            return Response(200, {resource[:-1]: copy.deepcopy(found)})

    def _product_page(self, query: dict[str, str]) -> Response:
        try:
            limit = min(max(int(query.get("limit", 50)), 1), 250)
            since_id = int(query.get("since_id", 0))
            ids = {int(i) for i in query["ids"].split(",")} if query.get("ids") else None
        except ValueError:
            return Response(400, {"errors": "limit, since_id and ids take numbers"})
        products = sorted(
            (p for p in self._products.values() if p["id"] > since_id),
            key=lambda p: p["id"],
        )
        page = [p for p in products if ids is None or p["id"] in ids][:limit]
        return Response(200, {"products": copy.deepcopy(page)})

    def _variant_owner(self, variant_id: int) -> tuple[dict, dict] | None:
        for product in self._products.values():
            for variant in product.get("variants") or []:
                if variant["id"] == variant_id:
                    return product, variant
        return None

    def _admin_write(self, request: Request, resource: str, object_id: int) -> Response:
        payload = _json_object(request.body)
        if payload is None:
            return Response(400, {"errors": "the body is not a JSON object"})
        key = request.headers.get("idempotency-key", "")
        with self._lock:
            repeated = self._repeated("admin", key)
            if repeated is not None:
                return repeated
            response, product = self._write_apply(resource, object_id, payload)
            if response.status == 200:
                self._writes.append(
                    {
                        "method": request.method,
                        "path": request.path,
                        "body": payload,
                        "idempotency_key": key or None,
                        "at": utc_now().isoformat(),
                    }
                )
                self._result_keep("admin", key, response.body)
        self.log(f"← {request.method} {request.path} {response.status}")
        if product is not None and self.target:
            self._outbox.put(("products/update", product))  # as Shopify does, after the write
        return response

    def _write_apply(self, resource: str, object_id: int, payload: dict) -> tuple[Response, Any]:
        noun = resource[:-1]
        fields = payload.get(noun)
        if not isinstance(fields, dict):
            return Response(400, {"errors": {noun: "Required parameter missing or invalid"}}), None
        if resource == "products":
            product = self._products.get(object_id)
            changed = product
        else:
            product, changed = self._variant_owner(object_id) or (None, None)
        if product is None or changed is None:
            return NOT_FOUND, None
        errors = _field_errors(noun, fields)
        nested = fields.get("variants") if noun == "product" else None
        errors |= _nested_variant_errors(product, nested)
        metafields = fields.get("metafields") if noun == "product" else None
        errors |= _metafield_errors(metafields)
        if errors:
            return Response(422, {"errors": errors}), None
        now = iso(utc_now())
        _assign(changed, fields, WRITABLE[noun])
        _metafields_set(changed, metafields or [])
        for variant_fields in nested or []:
            variant = next(v for v in product["variants"] if v["id"] == variant_fields["id"])
            _assign(variant, variant_fields, WRITABLE["variant"])
            variant["updated_at"] = now
        changed["updated_at"] = product["updated_at"] = now
        return Response(200, {noun: copy.deepcopy(changed)}), copy.deepcopy(product)

    def _repeated(self, area: str, key: str) -> Response | None:
        if key and (area, key) in self._results:
            original = self._results[(area, key)]
            return Response(409, {"errors": "Idempotency-Key already used", "original": original})
        return None

    def _result_keep(self, area: str, key: str, body: Any) -> None:
        if key:
            self._results[(area, key)] = copy.deepcopy(body)

    def _reply_receive(self, request: Request) -> Response:
        """A reply AIOS sends to a customer, signed `sha256=<hex HMAC of the body>`."""
        return self._outbound_receive(request, "replies", self._replies, "to the customer")

    def _post_receive(self, request: Request) -> Response:
        """A post AIOS publishes on the shop's blog, signed the same way."""
        return self._outbound_receive(request, "posts", self._posts, "published on the blog")

    def _outbound_receive(self, request: Request, area: str, kept: list, said: str) -> Response:
        digest = hmac.new(self.webhook_secret.encode(), request.body, hashlib.sha256).hexdigest()
        signature = request.headers.get("x-aios-signature", "")
        if not hmac.compare_digest(signature.encode(), f"sha256={digest}".encode()):
            return Response(401, {"errors": "X-AIOS-Signature does not verify"})
        payload = _json_object(request.body)
        if payload is None:
            return Response(400, {"errors": "the body is not a JSON object"})
        key = request.headers.get("idempotency-key", "")
        with self._lock:
            repeated = self._repeated(area, key)
            if repeated is not None:
                return repeated
            item = {
                "id": len(kept) + 1,
                "body": payload,
                "idempotency_key": key or None,
                "at": utc_now().isoformat(),
            }
            kept.append(item)
            noun = area.removesuffix("s")
            response = Response(200, {noun: {"id": item["id"], "status": "sent"}})
            self._result_keep(area, key, response.body)
        self.log(f"← {noun} {item['id']} {said}")
        return response

    def _faults_set(self, request: Request) -> Response:
        payload = _json_object(request.body) or {}
        try:
            retry_after = payload.get("retry_after")
            self.fail_next(
                int(payload["status"]),
                int(payload.get("count", 1)),
                None if retry_after is None else float(retry_after),
            )
        except (KeyError, TypeError, ValueError):
            expected = '{"status": 429|500|503, "count": N, "retry_after": seconds}'
            return Response(400, {"errors": f"expected {expected}"})
        with self._lock:
            return Response(200, {"faults": [list(fault) for fault in self._faults]})

    # -- sending to AIOS ----------------------------------------------------------------------

    def webhook_request(
        self,
        topic: str,
        payload: dict[str, Any],
        *,
        webhook_id: str | None = None,
        triggered_at: datetime | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of a delivery, as Shopify makes them."""
        body = json.dumps(payload).encode()
        digest = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).digest()
        webhook_id = webhook_id or str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
            "X-Shopify-Shop-Domain": self.shop_domain,
            "X-Shopify-Webhook-Id": webhook_id,
            # The event's id stays the same on every try of this delivery.
            "X-Shopify-Event-Id": str(uuid.uuid5(uuid.NAMESPACE_URL, webhook_id)),
            "X-Shopify-Triggered-At": (triggered_at or utc_now())
            .astimezone(UTC)
            .isoformat(timespec="milliseconds"),
            "X-Shopify-Api-Version": self.api_version,
        }
        return body, headers

    def send_webhook(
        self,
        topic: str,
        payload: dict[str, Any],
        *,
        webhook_id: str | None = None,
        triggered_at: datetime | None = None,
    ) -> int:
        """The status AIOS answered; OSError when it cannot be reached."""
        body, headers = self.webhook_request(
            topic, payload, webhook_id=webhook_id, triggered_at=triggered_at
        )
        return _post(f"{self._target()}/api/v1/webhooks/shopify", body, headers)

    def send_message(
        self,
        *,
        customer_email: str,
        body: str,
        customer_name: str = "",
        channel: str = "email",
        subject: str = "",
        order_ref: str = "",
        external_id: str = "",
    ) -> int | None:
        """POSTs a customer's message to AIOS; None (with a note, once) without an API token."""
        if not self.api_token:
            if not self._told_no_api_token:
                print("  (messages are not sent: no --api-token or AIOS_API_TOKEN)", flush=True)
                self._told_no_api_token = True
            return None
        message = {
            "store": self.shop_domain,
            "customer_email": customer_email,
            "customer_name": customer_name,
            "channel": channel,
            "subject": subject,
            "body": body,
            "order_ref": order_ref,
            "external_id": external_id,
        }
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.api_token}",
        }
        return _post(f"{self._target()}/api/v1/messages", json.dumps(message).encode(), headers)

    def send(self, event: Event, *, webhook_id: str | None = None) -> int | None:
        if event.topic == MESSAGE:
            fields = {k: v for k, v in event.payload.items() if k != "store"}
            return self.send_message(**fields)
        return self.send_webhook(
            event.topic, event.payload, webhook_id=webhook_id, triggered_at=event.at
        )

    def apply(self, event: Event) -> None:
        """The shop's own state follows a scenario event: stock moves, products change. A
        product changed since (through the Admin API) keeps its newer state."""
        with self._lock:
            if event.topic == "inventory_levels/update":
                for product in self._products.values():
                    for variant in product.get("variants") or []:
                        if variant.get("inventory_item_id") == event.payload["inventory_item_id"]:
                            variant["inventory_quantity"] = event.payload["available"]
            elif event.topic in ("products/create", "products/update"):
                current = self._products.get(event.payload["id"])
                if current is None or _time(current["updated_at"]) <= event.at:
                    self._products[event.payload["id"]] = copy.deepcopy(event.payload)

    def _target(self) -> str:
        if not self.target:
            raise RuntimeError("the simulator has no target to send to")
        return self.target

    def _send_outbox(self) -> None:
        while (item := self._outbox.get()) is not None:
            topic, product = item
            try:
                status: int | str = self.send_webhook(topic, product)
            except OSError as error:
                status = f"not delivered ({error})"
            self.log(f"→ {topic} {product['title']} {status} (after an Admin API write)")


CONTROL_ROUTES: dict[tuple[str, str], Callable[[StoreSimulator, Request], Response]] = {
    ("GET", "/_sim/writes"): lambda sim, request: Response(200, sim.writes),
    ("GET", "/_sim/replies"): lambda sim, request: Response(200, sim.replies),
    ("GET", "/_sim/posts"): lambda sim, request: Response(200, sim.posts),
    ("GET", "/_sim/health"): lambda sim, request: Response(200, {"shop": sim.shop_domain}),
    ("POST", "/_sim/faults"): StoreSimulator._faults_set,
    ("POST", "/outbound/replies"): StoreSimulator._reply_receive,
    ("POST", "/outbound/posts"): StoreSimulator._post_receive,
}


def _handler_for(sim: StoreSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "StoreSimulator/1.0"

        def do_GET(self) -> None:
            self._serve("GET")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            length = int_or_zero(self.headers.get("Content-Length"))
            if length > MAX_BODY:
                self._send(Response(413, {"errors": "Request Entity Too Large"}))
                return
            path, _, query = self.path.partition("?")
            request = Request(
                method=method,
                path=path,
                query={k: v[-1] for k, v in parse_qs(query).items()},
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length > 0 else b"",
            )
            self._send(sim.handle(request))

        def _send(self, response: Response) -> None:
            raw = json.dumps(response.body).encode()
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(raw)))
            self.send_header("X-Shopify-API-Version", sim.api_version)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _field_errors(noun: str, fields: dict[str, Any]) -> dict[str, list[str]]:
    """Shopify's 422 body: {"field": ["message", …]}."""
    errors: dict[str, list[str]] = {}
    for name in ("title", "body_html", "vendor", "product_type", "handle", "sku", "barcode"):
        if name in fields and not isinstance(fields[name], str | None):
            errors[name] = ["is invalid"]
    if noun == "product" and "title" in fields and not str(fields["title"] or "").strip():
        errors["title"] = ["can't be blank"]
    if noun == "product" and fields.get("status", "active") not in ("active", "draft", "archived"):
        errors["status"] = ["is not included in the list"]
    for name in ("price", "compare_at_price"):
        if name in fields and not (name == "compare_at_price" and fields[name] in (None, "")):
            message = _price_error(fields[name])
            if message:
                errors[name] = [message]
    return errors


def _price_error(value: Any) -> str | None:
    try:
        amount = Decimal(money(value))
    except ValueError:
        return "is not a number"
    return "must be greater than or equal to 0" if amount < 0 else None


def _nested_variant_errors(product: dict, nested: Any) -> dict[str, list[str]]:
    if nested is None:
        return {}
    ids = {variant["id"] for variant in product.get("variants") or []}
    if not isinstance(nested, list) or not all(
        isinstance(v, dict) and v.get("id") in ids for v in nested
    ):
        return {"variants": ["must be variants of this product, each with its id"]}
    errors: dict[str, list[str]] = {}
    for fields in nested:
        for name, messages in _field_errors("variant", fields).items():
            errors[f"variants.{name}"] = messages
    return errors


def _metafield_errors(metafields: Any) -> dict[str, list[str]]:
    if metafields is None:
        return {}
    if isinstance(metafields, list) and all(
        isinstance(m, dict)
        and all(isinstance(m.get(k), str) for k in ("namespace", "key", "value"))
        for m in metafields
    ):
        return {}
    return {"metafields": ["each needs a namespace, a key and a value"]}


def _metafields_set(product: dict[str, Any], metafields: list[dict[str, Any]]) -> None:
    """Upserts by namespace and key. (Shopify serves metafields from their own endpoint; the
    simulator keeps them on the product, where a test or the demo can see them.)"""
    kept = {(m["namespace"], m["key"]): m for m in product.get("metafields", [])}
    for metafield in metafields:
        kept[(metafield["namespace"], metafield["key"])] = {
            "namespace": metafield["namespace"],
            "key": metafield["key"],
            "type": metafield.get("type") or "single_line_text_field",
            "value": metafield["value"],
        }
    if kept:
        product["metafields"] = list(kept.values())


def _assign(target: dict[str, Any], fields: dict[str, Any], writable: set[str]) -> None:
    for name in writable & fields.keys():
        value = fields[name]
        if name in ("price", "compare_at_price"):
            value = money(value) if value not in (None, "") else None
        elif name == "tags" and isinstance(value, list):
            value = ", ".join(str(tag) for tag in value)
        elif name == "body_html" and value is None:
            value = ""
        target[name] = value


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float = 10) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)
