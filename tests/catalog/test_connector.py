"""The Shopify connector against a real store simulator: reads, writes, the token, retries
(rate limits, outages, refused connections), idempotency, refusals. And the simulator
itself: the webhooks it signs, the scenario it plays (accepted and applied by AIOS's real
endpoint), the replies it takes, its control endpoints and its command."""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime

import pytest

from agents.pipelines import PermanentError, TransientError
from catalog.connector import ShopifyConnector
from catalog.imports import catalog_import_csv
from catalog.models import Message, Order, Product, Variant, WebhookEvent
from catalog.schemas import MessageIn
from catalog.services import message_receive, webhook_process
from catalog.simulator import (
    MESSAGE,
    StoreSimulator,
    deliver,
    load_products_csv,
    shop_day,
    steady,
)
from catalog.webhooks import signature_valid
from tests.catalog.conftest import NEW_SECRET, SHOP
from tests.fakes.receiver import Receiver
from tests.helpers import SHARED_DATA, free_port

pytestmark = pytest.mark.django_db

DAY_START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _product(simulator, handle: str) -> dict:
    return next(p for p in simulator.products if p["handle"] == handle)


def _connector(store, **options) -> tuple[ShopifyConnector, list[float]]:
    waits: list[float] = []
    return ShopifyConnector(store, sleep=waits.append, **options), waits


def _http(method: str, url: str, body: bytes | None = None, headers=None) -> tuple[int, object]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _origin(receiver: Receiver) -> str:
    return receiver.url.rsplit("/", 1)[0]


# -- the connector ----------------------------------------------------------------------------


def test_a_product_is_read_from_the_shop_with_its_access_token(simulated_store, simulator):
    shirt = _product(simulator, "linen-shirt")
    connector, _ = _connector(simulated_store)

    product = connector.product_get(shirt["id"])

    assert (product["id"], product["title"]) == (shirt["id"], "Linen shirt")
    assert [v["price"] for v in product["variants"]] == ["59.00", "59.00", "59.00"]
    assert simulator.writes == []


def test_an_update_changes_the_product_at_the_shop_and_returns_it(simulated_store, simulator):
    mug = _product(simulator, "stoneware-mug")
    connector, _ = _connector(simulated_store)

    product = connector.product_update(
        mug["id"], {"body_html": "<p>Thrown by hand.</p>"}, idempotency_key="aios-proposal-1"
    )

    assert product["body_html"] == "<p>Thrown by hand.</p>"
    assert product["updated_at"] > mug["updated_at"]
    assert connector.product_get(mug["id"])["body_html"] == "<p>Thrown by hand.</p>"
    [write] = simulator.writes
    assert (write["method"], write["path"], write["idempotency_key"]) == (
        "PUT",
        f"/admin/api/2026-01/products/{mug['id']}.json",
        "aios-proposal-1",
    )
    assert write["body"] == {"product": {"id": mug["id"], "body_html": "<p>Thrown by hand.</p>"}}


def test_descriptions_in_other_languages_are_kept_as_metafields(simulated_store, simulator):
    apron = _product(simulator, "denim-work-apron")
    connector, _ = _connector(simulated_store)
    spanish = {"namespace": "aios", "key": "description_es", "value": "<p>Delantal.</p>"}

    connector.product_update(apron["id"], {"metafields": [spanish]}, idempotency_key="k-es")
    connector.product_update(
        apron["id"], {"metafields": [{**spanish, "value": "<p>Mandil.</p>"}]}, idempotency_key="k2"
    )

    assert _product(simulator, "denim-work-apron")["metafields"] == [
        {**spanish, "type": "single_line_text_field", "value": "<p>Mandil.</p>"}
    ]
    with pytest.raises(PermanentError, match="422: metafields: each needs"):
        connector.product_update(apron["id"], {"metafields": [{"key": "x"}]}, idempotency_key="k3")


def test_a_variant_price_update_reaches_the_shop_with_its_idempotency_key(
    simulated_store, simulator
):
    [candle_small, _] = _product(simulator, "beeswax-candle")["variants"]
    connector, _ = _connector(simulated_store)

    variant = connector.variant_update(
        candle_small["id"], {"price": "12.5"}, idempotency_key="aios-proposal-2"
    )

    assert (variant["id"], variant["price"]) == (candle_small["id"], "12.50")
    assert _product(simulator, "beeswax-candle")["variants"][0]["price"] == "12.50"
    assert [w["idempotency_key"] for w in simulator.writes] == ["aios-proposal-2"]


def test_a_wrong_access_token_is_refused_for_good(simulated_store, simulator):
    simulated_store.access_token = "shpat_wrong"
    connector, waits = _connector(simulated_store)

    with pytest.raises(PermanentError, match=r"401: \[API\] Invalid API key or access token"):
        connector.product_update(
            _product(simulator, "linen-shirt")["id"], {"title": "x"}, idempotency_key="k"
        )

    assert simulator.writes == [] and waits == []


def test_a_rate_limited_update_waits_as_told_and_writes_once(simulated_store, simulator):
    tote = _product(simulator, "waxed-canvas-tote")
    simulator.fail_next(429, retry_after=1.5)
    connector, waits = _connector(simulated_store)

    product = connector.product_update(tote["id"], {"tags": "bags"}, idempotency_key="k-429")

    assert waits == [1.5]
    assert product["tags"] == "bags"
    assert [w["idempotency_key"] for w in simulator.writes] == ["k-429"]


def test_two_unavailable_answers_are_retried_with_backoff_then_the_write_lands(
    simulated_store, simulator
):
    apron = _product(simulator, "denim-work-apron")
    simulator.fail_next(503, count=2)
    connector, waits = _connector(simulated_store)

    product = connector.product_update(apron["id"], {"status": "draft"}, idempotency_key="k-503")

    assert waits == [0.5, 1.0]
    assert product["status"] == "draft" and len(simulator.writes) == 1


def test_a_shop_that_stays_down_raises_a_transient_error_after_the_last_attempt(
    simulated_store, simulator
):
    simulator.fail_next(500, count=10)
    connector, waits = _connector(simulated_store, attempts=3)

    with pytest.raises(TransientError, match="answered 500") as raised:
        connector.product_update(
            _product(simulator, "linen-shirt")["id"], {"title": "x"}, idempotency_key="k"
        )

    assert waits == [0.5, 1.0]
    assert raised.value.retry_after is None and simulator.writes == []


def test_a_long_retry_after_is_capped_but_handed_on_to_the_caller(simulated_store, simulator):
    simulator.fail_next(429, count=2, retry_after=40)
    connector, waits = _connector(simulated_store, attempts=2, max_wait=30)

    with pytest.raises(TransientError) as raised:
        connector.product_get(_product(simulator, "linen-shirt")["id"])

    assert waits == [30]
    assert raised.value.retry_after == 40.0


def test_the_same_idempotency_key_twice_writes_once_and_returns_the_first_result(
    simulated_store, simulator
):
    throw = _product(simulator, "chunky-knit-throw")
    connector, _ = _connector(simulated_store)

    first = connector.product_update(throw["id"], {"title": "Knit throw"}, idempotency_key="k1")
    again = connector.product_update(throw["id"], {"title": "Other"}, idempotency_key="k1")

    assert again == first and again["title"] == "Knit throw"
    assert len(simulator.writes) == 1
    assert _product(simulator, "chunky-knit-throw")["title"] == "Knit throw"


def test_an_unknown_product_is_a_permanent_error(simulated_store, simulator):
    connector, waits = _connector(simulated_store)

    with pytest.raises(PermanentError, match="404: Not Found"):
        connector.product_get(123)
    with pytest.raises(PermanentError, match="404: Not Found"):
        connector.variant_update(123, {"price": "1.00"}, idempotency_key="k")

    assert waits == [] and simulator.writes == []


def test_invalid_fields_are_refused_with_shopifys_own_errors(simulated_store, simulator):
    [sock] = _product(simulator, "wool-socks-2-pack")["variants"][:1]
    connector, _ = _connector(simulated_store)

    with pytest.raises(PermanentError, match="422: price: is not a number"):
        connector.variant_update(sock["id"], {"price": "cheap"}, idempotency_key="k")

    assert simulator.writes == []


def test_a_shop_that_refuses_connections_is_worth_retrying_later(simulated_store):
    simulated_store.api_base_url = f"http://127.0.0.1:{free_port()}"
    connector, waits = _connector(simulated_store, attempts=2, timeout=2)

    with pytest.raises(TransientError, match="gave up after 2 attempts"):
        connector.product_get(1)

    assert waits == [0.5]


def test_only_http_addresses_are_called(simulated_store):
    simulated_store.api_base_url = "file:///etc"

    with pytest.raises(PermanentError, match="not an http"):
        ShopifyConnector(simulated_store)


# -- the simulator ----------------------------------------------------------------------------


def test_a_webhook_the_simulator_sends_verifies_and_carries_shopifys_headers():
    receiver = Receiver()
    simulator = StoreSimulator(
        shop_domain=SHOP, webhook_secret=NEW_SECRET, access_token="t", target=_origin(receiver)
    )
    try:
        status = simulator.send_webhook("products/update", {"id": 1, "title": "Mug"})
    finally:
        receiver.close()

    [request] = receiver.requests
    headers = request["headers"]
    assert status == 200
    assert signature_valid(request["body"], headers["x-shopify-hmac-sha256"], [NEW_SECRET])
    assert not signature_valid(request["body"], headers["x-shopify-hmac-sha256"], ["other"])
    assert json.loads(request["body"]) == {"id": 1, "title": "Mug"}
    assert (headers["x-shopify-topic"], headers["x-shopify-shop-domain"]) == (
        "products/update",
        SHOP,
    )
    assert headers["x-shopify-api-version"] == "2026-01"
    assert re.fullmatch(r"[0-9a-f-]{36}", headers["x-shopify-webhook-id"])
    assert headers["x-shopify-event-id"] and headers["x-shopify-triggered-at"].endswith("+00:00")


def test_an_admin_write_is_announced_as_a_products_update(simulated_store, simulator):
    receiver = Receiver()
    simulator.target = _origin(receiver)
    mug = _product(simulator, "stoneware-mug")
    try:
        ShopifyConnector(simulated_store).product_update(
            mug["id"], {"body_html": "<p>Glazed.</p>"}, idempotency_key="k"
        )
        deadline = time.monotonic() + 5
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        receiver.close()

    [request] = receiver.requests
    assert request["headers"]["x-shopify-topic"] == "products/update"
    assert json.loads(request["body"])["body_html"] == "<p>Glazed.</p>"


def test_the_shop_day_is_the_same_for_a_seed_and_sells_one_product_out(simulator):
    day = shop_day(products=simulator.products, shop_domain=SHOP, seed=7, start=DAY_START)

    assert day == shop_day(products=simulator.products, shop_domain=SHOP, seed=7, start=DAY_START)
    assert day != shop_day(products=simulator.products, shop_domain=SHOP, seed=8, start=DAY_START)
    assert Counter(e.topic for e in day) == {
        "products/create": 10,
        "orders/create": 22,
        "inventory_levels/update": 30,
        MESSAGE: 30,
        "products/update": 1,
    }
    assert [e.at for e in day] == sorted(e.at for e in day)
    assert [e.summary for e in day if "sold out" in e.summary] == [
        "Merino wool beanie: 0 left (sold out)"
    ]
    orders = [e.payload["name"] for e in day if e.topic == "orders/create"]
    assert orders == [f"#{n}" for n in range(1001, 1023)]


def _webhook_post(client, simulator, event) -> int:
    body, headers = simulator.webhook_request(event.topic, event.payload, triggered_at=event.at)
    meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
    response = client.post(
        "/api/v1/webhooks/shopify", body, content_type="application/json", **meta
    )
    return response.status_code


def _message_post(store, payload) -> bool:
    """What POST /api/v1/messages does with the body: validate it, store it."""
    body = MessageIn(**payload)
    return message_receive(workspace=store.workspace, **body.dict())[1]


def test_every_shop_day_event_is_accepted_and_applied_by_aios(client, store, simulator):
    day = shop_day(products=simulator.products, shop_domain=SHOP, start=DAY_START)

    answers = Counter(
        (event.topic, _message_post(store, event.payload))
        if event.topic == MESSAGE
        else (event.topic, _webhook_post(client, simulator, event))
        for event in day
    )
    for pk in WebhookEvent.objects.order_by("pk").values_list("pk", flat=True):
        webhook_process(event_id=pk)

    assert answers == {
        (topic, True if topic == MESSAGE else 200): n
        for topic, n in Counter(e.topic for e in day).items()
    }
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert (Product.objects.count(), Order.objects.count(), Message.objects.count()) == (10, 22, 30)
    beanie = Variant.objects.get(product__handle="merino-wool-beanie")
    assert beanie.inventory_quantity == 0
    assert Order.objects.get(name="#1001").email == "emma.clarke@example.com"
    throw = Product.objects.get(handle="chunky-knit-throw")
    assert "sale" in throw.tags and str(throw.variants.get().price) == "75.60"


def test_the_steady_scenario_keeps_selling_and_restocks_what_runs_low(simulator):
    stream = steady(products=simulator.products, shop_domain=SHOP, clock=lambda: DAY_START)
    events = [next(stream) for _ in range(400)]

    stock = [e.payload["available"] for e in events if e.topic == "inventory_levels/update"]
    orders = [e.payload["name"] for e in events if e.topic == "orders/create"]
    assert min(stock) >= 0
    assert any("(restocked)" in e.summary for e in events)
    assert orders == [f"#{n}" for n in range(1001, 1001 + len(orders))]
    assert any(e.topic == MESSAGE for e in events)


def test_the_replies_endpoint_refuses_a_bad_signature_and_applies_each_key_once(simulator):
    body = json.dumps({"to": "ana@example.com", "text": "Your order is on its way."}).encode()
    good = "sha256=" + hmac.new(NEW_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "Idempotency-Key": "aios-proposal-9"}

    refused = _http("POST", simulator.replies_url, body, {**headers, "X-AIOS-Signature": "x"})
    first = _http("POST", simulator.replies_url, body, {**headers, "X-AIOS-Signature": good})
    again = _http("POST", simulator.replies_url, body, {**headers, "X-AIOS-Signature": good})

    assert refused == (401, {"errors": "X-AIOS-Signature does not verify"})
    assert first[0] == 200
    assert again == (409, {"errors": "Idempotency-Key already used", "original": first[1]})
    [reply] = simulator.replies
    assert reply["body"]["text"] == "Your order is on its way."
    assert _http("GET", f"{simulator.base_url}/_sim/replies")[1] == simulator.replies


def test_faults_and_writes_can_be_driven_over_http(simulated_store, simulator):
    fault = json.dumps({"status": 503, "count": 1, "retry_after": 0.25}).encode()
    assert _http("POST", f"{simulator.base_url}/_sim/faults", fault)[0] == 200
    connector, waits = _connector(simulated_store)

    connector.product_update(
        _product(simulator, "linen-shirt")["id"], {"tags": "linen"}, idempotency_key="k"
    )

    assert waits == [0.25]
    status, writes = _http("GET", f"{simulator.base_url}/_sim/writes")
    assert status == 200 and [w["idempotency_key"] for w in writes] == ["k"]
    assert _http("POST", f"{simulator.base_url}/_sim/faults", b"{}")[0] == 400


def test_a_shopify_csv_gets_the_ids_a_catalog_import_gives_it(store):
    path = SHARED_DATA / "shopify-products" / "apparel.csv"
    products = load_products_csv(path, shop_domain=SHOP)

    catalog_import_csv(connection=store, text=path.read_text(encoding="utf-8"))

    assert {p["id"] for p in products} == set(Product.objects.values_list("external_id", flat=True))
    assert {v["id"] for p in products for v in p["variants"]} == set(
        Variant.objects.values_list("external_id", flat=True)
    )
    assert all(v["inventory_quantity"] > 0 for p in products for v in p["variants"])


def test_an_unreachable_target_is_retried_then_skipped_with_a_note(simulator, capsys):
    simulator.target = f"http://127.0.0.1:{free_port()}"
    [event] = shop_day(products=simulator.products, shop_domain=SHOP, start=DAY_START)[:1]
    waits: list[float] = []

    status = deliver(simulator, event, tries=3, wait=0.1, sleep=waits.append)

    assert status is None and waits == [0.1, 0.1]
    assert "did not answer products/create after 3 tries" in capsys.readouterr().out


def test_the_command_serves_the_admin_api_and_sends_the_scenario():
    receiver = Receiver()
    command = [sys.executable, "-m", "catalog.simulator", "--target", _origin(receiver)]
    options = ["--secret", NEW_SECRET, "--shop", SHOP, "--rate", "50", "--count", "3"]
    process = subprocess.Popen([*command, *options], stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    ).start()
    try:
        printed = [lines.get(timeout=20).rstrip() for _ in range(6)]
        base_url = printed[0].split("Admin API at ")[1].split()[0]
        listed = _http(
            "GET",
            f"{base_url}/admin/api/2026-01/products.json?limit=2",
            headers={"X-Shopify-Access-Token": "shpat_simulator"},
        )
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
        receiver.close()

    assert printed[0] == f"store simulator: Admin API at {base_url} (shop {SHOP})"
    assert printed[1:4] == [
        "→ products/create Linen shirt 200",
        "→ products/create Organic cotton tee 200",
        "→ products/create Merino wool beanie 200",
    ]
    assert printed[4:] == [
        "scenario shop-day done: 3 events sent",
        "serving the Admin API until Ctrl-C",
    ]
    assert listed[0] == 200 and len(listed[1]["products"]) == 2
    assert len(receiver.requests) == 3 and code == 0


def test_the_aios_command_hands_simulate_store_to_the_simulator(capsys):
    from aios_site.cli import main

    with pytest.raises(SystemExit):
        main(["simulate-store", "--secret", "s"])

    assert "--target is needed" in capsys.readouterr().err
