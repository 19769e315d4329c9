"""The Shopify webhook endpoint under abuse: generated bodies and headers get 401, 400, 413 or
200 exactly as documented and never a 500; a refusal stores nothing and changes no data;
replays and concurrent duplicates are stored once and start one run; an older delivery never
brings older data back. Through the Django route (the test client), the ASGI lane in this
process, and the ASGI lane as daphne serves it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.client
import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.test import Client
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import event as observe
from hypothesis import strategies as st

from agents.models import Run
from approvals.audit import Actor
from catalog.ingress import PATH, WebhookFastLane
from catalog.models import Product, StoreConnection, WebhookEvent
from catalog.services import HANDLERS, store_connect, webhook_process, webhook_process_many
from catalog.webhooks import MAX_BODY, MAX_NESTING
from memory.models import MemoryItem
from tests.catalog.conftest import NEW_SECRET, OLD_SECRET, SHOP
from tests.catalog.test_webhooks import HOOKS
from tests.helpers import at_once, web_serving

pytestmark = pytest.mark.django_db

UNVERIFIED = "the webhook signature does not verify"
NOT_JSON = "the body is not JSON"
NOT_OBJECT = "the body is not a JSON object"
REQUIRED = "X-Shopify-Topic and X-Shopify-Webhook-Id are required"
UNSTORABLE = (
    "the delivery cannot be stored as it came: a \\u0000 or a lone surrogate in its text, "
    "a number out of range, or nesting too deep"
)
TOO_LARGE = f"the body is larger than {MAX_BODY // 1024} KB"
OTHER_SHOP, OTHER_SECRET = "bob-shop.myshopify.com", "bobs-secret-0123456789"
SECRETS = {SHOP: [NEW_SECRET, OLD_SECRET], OTHER_SHOP: [OTHER_SECRET]}
PRODUCT = (HOOKS / "products-create.json").read_bytes()

# The DB is rolled back per test, not per example: every example makes its own ids.
_ids = itertools.count(10**12)


def fuzz(examples: int) -> settings:
    """Bounded, so the file runs in about a minute; no example database left behind."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# -- what is sent ---------------------------------------------------------------------------

# Any code point but lone surrogates, and now and then one with a NUL or markup in it.
TEXT = st.one_of(
    *[st.text(max_size=20)] * 3,
    st.sampled_from(["a \x00 b", "\x00", "\u2028", "<b>&amp;</b>", '\\"']),
)
# What reaches the application in a header value: printable Latin-1 (daphne itself refuses
# a value with NEL, RFC 9110 §5.5, before the application sees it).
HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f\x85"),
    max_size=20,
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
OBJECTS = st.dictionaries(TEXT, JSON, max_size=5)
TOPICS = st.sampled_from(sorted(HANDLERS)) | st.sampled_from(["carts/update", "themes/publish"])
BLANK = st.text(" \t\xa0\u2003", max_size=3)
MOMENTS = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
TRIGGERED_AT = st.none() | HEADER_TEXT | MOMENTS.map(datetime.isoformat)


def _sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def with_headers(self, **headers: str | None) -> Delivery:
        merged = {**self.headers, **{k.replace("_", "-"): v for k, v in headers.items()}}
        return Delivery(self.body, {k: v for k, v in merged.items() if v is not None})


def signed(
    body: bytes, *, topic="products/update", secret=NEW_SECRET, shop=SHOP, **headers
) -> Delivery:
    """A delivery as the shop sends it, with a webhook id of its own."""
    return Delivery(
        body,
        {
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": _sign(body, secret),
            "X-Shopify-Shop-Domain": shop,
            "X-Shopify-Webhook-Id": f"w-{next(_ids)}",
        },
    ).with_headers(**headers)


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _numbers_as_decimals(value):
    """A JSON value as PostgreSQL keeps it: a number is the decimal it was written as (jsonb
    gives 7.805611195569886e+16 back as 78056111955698860)."""
    if isinstance(value, dict):
        return {k: _numbers_as_decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_as_decimals(item) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(repr(value))
    return value


def _json(body: bytes):
    """The body's JSON value, or ValueError: RFC 8259 JSON has no NaN or Infinity."""

    def refuse(constant):
        raise ValueError(constant)

    try:
        return json.loads(body, parse_constant=refuse)
    except RecursionError as error:
        raise ValueError("nested too deeply") from error


def expected(delivery: Delivery, *, secrets: dict[str, list[str]]) -> tuple[int, str]:
    """What the endpoint must answer, in the order the documentation gives: too large, not
    authenticated (`secrets` by shop), not a JSON object, topic or id missing, not storable,
    received."""
    headers = {k.lower(): v for k, v in delivery.headers.items()}
    if len(delivery.body) > MAX_BODY:
        return 413, TOO_LARGE
    shop = headers.get("x-shopify-shop-domain", "").strip().lower()
    signature = headers.get("x-shopify-hmac-sha256")
    if signature not in {_sign(delivery.body, s) for s in secrets.get(shop, [])}:
        return 401, UNVERIFIED
    try:
        payload = _json(delivery.body)
    except ValueError:
        return 400, NOT_JSON
    if not isinstance(payload, dict):
        return 400, NOT_OBJECT
    topic = headers.get("x-shopify-topic", "").strip()
    webhook_id = headers.get("x-shopify-webhook-id", "").strip()
    if not topic or not webhook_id:
        return 400, REQUIRED
    stored = [topic, webhook_id] + [
        headers.get(f"x-shopify-{name}", "") for name in ("event-id", "api-version")
    ]
    if _has_nul(payload) or _depth(payload) > MAX_NESTING or any("\x00" in t for t in stored):
        return 400, UNSTORABLE
    return 200, "received"


def _depth(value) -> int:
    if isinstance(value, dict | list):
        children = value.values() if isinstance(value, dict) else value
        return 1 + max(map(_depth, children), default=0)
    return 0


def via_django(client, delivery: Delivery, **environ) -> tuple[int, str]:
    meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in delivery.headers.items()}
    response = client.post(PATH, delivery.body, content_type="application/json", **meta, **environ)
    return response.status_code, response.json()["detail"]


def via_daphne(url: str, delivery: Delivery) -> tuple[int, str]:
    where = urlsplit(url)
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    try:
        conn.putrequest("POST", PATH)
        for name, value in {"Content-Type": "application/json", **delivery.headers}.items():
            conn.putheader(name, value.encode("latin-1"))
        conn.putheader("Content-Length", str(len(delivery.body)))
        conn.endheaders(delivery.body)
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())["detail"]
    finally:
        conn.close()


def _state() -> tuple:
    """What a refused delivery must leave as it was: the events, the catalog and memory."""
    return (
        list(WebhookEvent.objects.order_by("pk").values_list("pk", "status", "body")),
        list(
            Product.objects.order_by("pk").values_list(
                "pk", "title", "body_html", "status", "source_updated_at", "deleted_at"
            )
        ),
        list(MemoryItem.objects.order_by("pk").values_list("pk", "version", "content")),
    )


@pytest.fixture
def shop(store, other_workspace):
    """The store with a product it sent, processed, and a second shop of another workspace."""
    status, _ = via_django(Client(), signed(PRODUCT, topic="products/create"))
    assert status == 200
    webhook_process_many(event_ids=list(WebhookEvent.objects.values_list("pk", flat=True)))
    store_connect(
        workspace=other_workspace,
        shop_domain=OTHER_SHOP,
        access_token="shpat_y",
        webhook_secrets=[OTHER_SECRET],
        actor=Actor("user", "test"),
    )
    assert Product.objects.count() == 1
    return store


# -- refusals -------------------------------------------------------------------------------


@st.composite
def unverified_deliveries(draw) -> Delivery:
    body = draw(st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode()))
    shop, signature = draw(
        st.sampled_from(
            [
                (SHOP, None),  # no signature
                (SHOP, _sign(body, "not-the-secret")),
                (SHOP, _sign(body + b" ", NEW_SECRET)),  # another body's
                (SHOP, _sign(body, OTHER_SECRET)),  # another shop's secret
                (SHOP.upper(), _sign(body, OTHER_SECRET)),
                (OTHER_SHOP, _sign(body, NEW_SECRET)),  # our secret, claimed by another shop
                ("unknown.myshopify.com", _sign(body, NEW_SECRET)),
                ("", _sign(body, NEW_SECRET)),
                (None, _sign(body, NEW_SECRET)),
                ("alice-shop.myshopify.com\x00", _sign(body, NEW_SECRET)),
            ]
        )
        | st.tuples(st.just(SHOP), TEXT)  # any text, non-ASCII and NUL included
        | st.tuples(TEXT, st.just(_sign(body, NEW_SECRET)))
    )
    return signed(body, topic=draw(TEXT), shop=shop).with_headers(
        X_Shopify_Hmac_Sha256=signature, X_Shopify_Webhook_Id=draw(TEXT)
    )


@fuzz(80)
@given(delivery=unverified_deliveries())
def test_a_delivery_that_does_not_verify_is_401_and_changes_nothing(client, shop, delivery):
    before = _state()

    assert via_django(client, delivery) == (401, UNVERIFIED)
    assert _state() == before


@st.composite
def malformed_bodies(draw) -> bytes:
    """Bodies that are not RFC 8259 JSON, or JSON PostgreSQL cannot hold as it came."""
    depth = draw(st.integers(MAX_NESTING + 1, 20000))
    crafted = st.sampled_from(
        [
            b"{not json",
            b"",
            b'{"price": NaN}',
            b"[Infinity]",
            b"-Infinity",
            b"\xff\xfe\x00",
            b"null",
            b'"a string"',
            b"[]",
            b'{"title": "\\ud800"}',  # a lone surrogate
            b'{"title": "\\u0000"}',
            b'{"\\u0000": 1}',
            b'{"price": 1e400}',  # a float out of range
            b"[" * depth + b"]" * depth,
            b'{"a":' * depth + b"1" + b"}" * depth,
        ]
    )
    random = st.binary(max_size=300).filter(lambda b: not _parses(b))
    not_objects = JSON.filter(lambda v: not isinstance(v, dict))
    with_nul = OBJECTS.filter(_has_nul)
    return draw(crafted | random | (not_objects | with_nul).map(lambda v: json.dumps(v).encode()))


def _parses(body: bytes) -> bool:
    try:
        _json(body)
    except ValueError:
        return False
    return True


@fuzz(60)
@given(body=malformed_bodies(), secret=st.sampled_from([NEW_SECRET, OLD_SECRET]))
def test_a_verified_body_that_is_not_a_json_object_postgresql_holds_is_400_and_changes_nothing(
    client, shop, body, secret
):
    before = _state()

    status, detail = via_django(client, signed(body, secret=secret))

    assert status == 400 and detail in {NOT_JSON, NOT_OBJECT, UNSTORABLE}
    assert _state() == before


def test_nesting_is_refused_past_its_limit_whatever_the_recursion_limit(client, shop):
    """The limit is the endpoint's own, not where the parser runs out of stack: one level
    past it is refused however much stack there is, and it is itself stored."""

    def nested(levels: int) -> bytes:
        return b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1)

    assert via_django(client, signed(nested(MAX_NESTING + 1))) == (400, UNSTORABLE)
    assert via_django(client, signed(nested(MAX_NESTING))) == (200, "received")


@fuzz(30)
@given(
    payload=OBJECTS,
    topic=st.none() | BLANK | TOPICS,
    webhook_id=st.none() | BLANK | st.just("w-ok"),
)
def test_a_verified_delivery_without_a_topic_or_a_webhook_id_is_400_and_changes_nothing(
    client, shop, payload, topic, webhook_id
):
    assume(not (topic and topic.strip() and webhook_id and webhook_id.strip()))
    body = json.dumps(payload).encode()
    delivery = signed(body).with_headers(X_Shopify_Topic=topic, X_Shopify_Webhook_Id=webhook_id)
    before = _state()

    assert via_django(client, delivery) == (400, REQUIRED)
    assert _state() == before


@fuzz(12)
@given(extra=st.integers(1, 64 * 1024), declared_only=st.booleans())
def test_an_oversized_delivery_is_413_and_changes_nothing(client, shop, extra, declared_only):
    size = MAX_BODY + extra
    body = b"{}" if declared_only else b"[" + b" " * (size - 2) + b"]"
    before = _state()

    answer = via_django(client, signed(body), CONTENT_LENGTH=str(size))

    assert answer == (413, TOO_LARGE)
    assert _state() == before


@pytest.mark.parametrize("length", ["²", "12a", "-5", "1e9", "0x10"])
def test_a_content_length_that_is_not_a_number_is_400(client, shop, length):
    before = _state()

    status, detail = via_django(client, signed(b"{}"), CONTENT_LENGTH=length)

    assert (status, detail) == (400, "the Content-Length header is not a number")
    assert _state() == before


# -- what is received -----------------------------------------------------------------------


@fuzz(60)
@given(
    payload=OBJECTS | JSON,
    replayed=OBJECTS | JSON,
    topic=TOPICS | TEXT,
    domain=st.sampled_from([SHOP, SHOP.upper(), f"  {SHOP} "]),
    secret=st.sampled_from([NEW_SECRET, OLD_SECRET]),
    event_id=st.none() | TEXT,
    triggered_at=TRIGGERED_AT,
    api_version=st.none() | TEXT,
)
def test_any_verified_delivery_is_stored_once_its_replays_dropped_and_its_processing_settles(
    client, shop, payload, replayed, topic, domain, secret, event_id, triggered_at, api_version
):
    body = json.dumps(payload).encode()
    delivery = signed(body, topic=topic, secret=secret, shop=domain).with_headers(
        X_Shopify_Event_Id=event_id,
        X_Shopify_Triggered_At=triggered_at,
        X_Shopify_Api_Version=api_version,
    )
    webhook_id = delivery.headers["X-Shopify-Webhook-Id"]
    events = WebhookEvent.objects.count()
    want = expected(delivery, secrets={SHOP: [secret]})
    observe(f"{want[0]} {want[1]}")

    assert via_django(client, delivery) == want
    if want[0] != 200:
        assert WebhookEvent.objects.count() == events
        return
    again = signed(json.dumps(replayed).encode(), topic=topic).with_headers(
        X_Shopify_Webhook_Id=webhook_id
    )
    want_again = expected(again, secrets={SHOP: [NEW_SECRET]})
    assert via_django(client, again) == (
        (200, "already received") if want_again == (200, "received") else want_again
    )
    assert via_django(client, delivery) == (200, "already received")
    event = WebhookEvent.objects.get(webhook_id=webhook_id)
    assert WebhookEvent.objects.count() == events + 1
    assert (event.topic, event.status) == (topic.strip(), "received")
    assert _numbers_as_decimals(event.body) == _numbers_as_decimals(payload)

    webhook_process(event_id=event.pk)
    event.refresh_from_db()
    assert event.status in {"processed", "ignored", "failed", "stale"}
    assert event.error or event.status != "failed"  # a failure says why
    settled = (event.status, event.processed_at)
    webhook_process(event_id=event.pk)  # a redelivered task changes nothing
    event.refresh_from_db()
    assert (event.status, event.processed_at) == settled


@fuzz(40)
@given(
    moments=st.lists(st.none() | st.integers(0, 10_000), min_size=2, max_size=6).filter(
        lambda ms: len([m for m in ms if m is not None]) == len({m for m in ms if m is not None})
    )
)
def test_an_older_product_update_never_brings_older_data_back(client, shop, moments):
    """Deliveries arrive in `moments`' order; each says (in its `updated_at`, or not at all)
    when the product was changed. One from before a change already applied is stale."""
    product_id, start = next(_ids), datetime(2026, 1, 1, tzinfo=UTC)
    base = json.loads((HOOKS / "products-update.json").read_bytes())
    ids = []
    for n, minute in enumerate(moments):
        payload = base | {"id": product_id, "title": f"title {n}", "variants": []}
        payload.pop("updated_at")
        if minute is not None:
            payload["updated_at"] = (start + timedelta(minutes=minute)).isoformat()
        delivery = signed(json.dumps(payload).encode())
        assert via_django(client, delivery) == (200, "received")
        ids.append(WebhookEvent.objects.get(webhook_id=delivery.headers["X-Shopify-Webhook-Id"]))

    webhook_process_many(event_ids=[event.pk for event in ids])

    newest, shown, statuses = None, None, []
    for n, minute in enumerate(moments):
        if minute is not None and newest is not None and minute < newest:
            statuses.append("stale")
            continue
        statuses.append("processed")
        shown = f"title {n}"
        newest = minute if minute is not None else newest
    product = Product.objects.get(external_id=product_id)
    assert product.title == shown
    assert [WebhookEvent.objects.get(pk=e.pk).status for e in ids] == statuses
    fact = MemoryItem.objects.filter(namespace="products", key=f"product:{product_id}")
    assert shown in fact.latest("version").content


# -- the ASGI lane, in this process: what it reads ------------------------------------------


def _through_the_lane(delivery: Delivery, chunks: list[bytes]) -> tuple[int, str, int]:
    """The lane's answer to `delivery` sent as `chunks`, and how many chunks it read."""
    read = 0

    async def receive():
        nonlocal read
        read += 1
        return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}

    sent = []

    async def send(message):
        sent.append(message)

    async def unreachable(scope, receive, send):  # everything else goes to Django
        raise AssertionError("the webhook went past its lane")

    headers = [(b"host", b"testserver")] + [
        (name.lower().encode(), value.encode("latin-1")) for name, value in delivery.headers.items()
    ]
    scope = {"type": "http", "method": "POST", "path": PATH, "headers": headers}
    asyncio.run(WebhookFastLane(unreachable)(scope, receive, send))
    return sent[0]["status"], json.loads(sent[1]["body"])["detail"], read


@fuzz(10)
@given(extra=st.integers(1, 10**9))
def test_the_asgi_lane_refuses_a_declared_oversized_body_without_reading_it(shop, extra):
    delivery = signed(b"{}").with_headers(Content_Length=str(MAX_BODY + extra))
    before = _state()

    assert _through_the_lane(delivery, [b"{}"]) == (413, TOO_LARGE, 0)
    assert _state() == before


@fuzz(10)
@given(chunk=st.integers(64 * 1024, 1024 * 1024))
def test_the_asgi_lane_stops_reading_an_undeclared_body_once_it_passes_the_limit(shop, chunk):
    count = MAX_BODY // chunk + 5  # well past the limit
    body = b" " * (chunk * count)
    before = _state()

    status, detail, read = _through_the_lane(signed(body), [b" " * chunk] * count)

    assert (status, detail) == (413, TOO_LARGE)
    assert read == MAX_BODY // chunk + 1  # the first chunk past the limit, and no more
    assert _state() == before


# -- the ASGI lane as daphne serves it ------------------------------------------------------


@pytest.fixture(scope="module")
def served(django_db_setup, django_db_blocker):
    with web_serving(processes=1) as (url, _process):
        yield url


@st.composite
def any_deliveries(draw) -> Delivery:
    """A mix of every kind, most of them signed, with what daphne passes on in headers."""
    body = draw(
        st.one_of(
            st.just(PRODUCT),
            *[OBJECTS.map(lambda v: json.dumps(v).encode())] * 2,
            st.sampled_from([b"{not json", b'{"t": "\\u0000"}', b"[NaN]", b"[]"]),
            st.binary(max_size=100),
        )
    )
    shop, secret = draw(
        st.sampled_from(
            [
                (SHOP, NEW_SECRET),
                (SHOP, OLD_SECRET),
                (SHOP.upper(), NEW_SECRET),
                (OTHER_SHOP, OTHER_SECRET),
                (SHOP, OTHER_SECRET),
                (OTHER_SHOP, NEW_SECRET),
                ("x.myshopify.com", NEW_SECRET),
            ]
        )
    )
    delivery = signed(body, topic=draw(TOPICS | HEADER_TEXT), secret=secret, shop=shop)
    if draw(st.booleans()):
        delivery = delivery.with_headers(X_Shopify_Webhook_Id=draw(st.none() | HEADER_TEXT))
    if draw(st.integers(0, 3)) == 3:  # a forged signature, now and then
        delivery = delivery.with_headers(X_Shopify_Hmac_Sha256=draw(HEADER_TEXT))
    return delivery.with_headers(X_Shopify_Triggered_At=draw(TRIGGERED_AT))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@fuzz(40)
@given(delivery=any_deliveries())
def test_daphne_answers_generated_deliveries_as_documented(served, shop, delivery):
    want = expected(delivery, secrets=SECRETS)
    seen = WebhookEvent.objects.filter(
        connection__shop_domain=delivery.headers["X-Shopify-Shop-Domain"].strip().lower(),
        webhook_id=delivery.headers.get("X-Shopify-Webhook-Id", "").strip(),
    )
    if want == (200, "received") and seen.exists():
        want = (200, "already received")  # a generated id may come round again
    events = WebhookEvent.objects.count()
    observe(f"{want[0]} {want[1]}")

    assert via_daphne(served, delivery) == want
    assert WebhookEvent.objects.count() == events + (want == (200, "received"))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_daphne_refuses_an_oversized_body_and_stores_nothing(served, shop):
    before = _state()

    answer = via_daphne(served, signed(b"[" + b" " * MAX_BODY + b"]"))

    assert answer == (413, TOO_LARGE)
    assert _state() == before


# -- concurrent duplicates ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_duplicates_sent_at_once_through_both_lanes_store_one_event_and_start_one_run(served, shop):
    product = json.loads(PRODUCT) | {"id": next(_ids)}
    delivery = signed(json.dumps(product).encode(), topic="products/create")
    answers = at_once(
        [lambda: via_django(Client(), delivery)] * 4 + [lambda: via_daphne(served, delivery)] * 4
    )

    assert sorted(answers) == [(200, "already received")] * 7 + [(200, "received")]
    event = WebhookEvent.objects.get(webhook_id=delivery.headers["X-Shopify-Webhook-Id"])
    runs = Run.objects.filter(agent__slug="catalog-writer").count()
    at_once([lambda: webhook_process(event_id=event.pk)] * 6)

    event.refresh_from_db()
    assert event.status == "processed"
    assert Run.objects.filter(agent__slug="catalog-writer").count() == runs + 1
    assert StoreConnection.objects.get(shop_domain=SHOP).events.count() == 2
