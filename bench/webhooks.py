"""Webhook ingest: signed Shopify deliveries per second, and their latency, over HTTP.

    python bench/webhooks.py [--deliveries 3000] [--clients 8] [--web-processes 2] [--json PATH]

Starts its own embedded PostgreSQL + Valkey and `aios web` (daphne processes sharing the
port, as `aios up` runs it), connects one store,
then `--clients` threads POST `products/update` deliveries (the shared sample, each with
its own webhook id, correctly signed) over keep-alive connections. Each is verified,
stored and answered; processing is queued for workers (none run here: this measures the
ingest path). Prints deliveries per second and latency percentiles seen by the clients
(and writes them to PATH with `--json`).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SHOP, SECRET = "bench-shop.myshopify.com", "bench-webhook-secret-0123"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--web-processes", type=int, default=2)
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    options = parser.parse_args()

    from runtime import django_on_embedded_services, machine, percentile, summary, write_json

    with django_on_embedded_services():
        _connect_store()
        from tests.helpers import free_port

        port = free_port()
        web = subprocess.Popen(
            web_command(port, options.web_processes),
            env=dict(os.environ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_healthy(port)
            body = (ROOT.parent / "shared/data/shopify-webhooks/products-update.json").read_bytes()
            latencies, seconds, statuses = _blast(port, body, options)
        finally:
            web.terminate()
            web.wait(timeout=20)
        from catalog.models import WebhookEvent

        stored = WebhookEvent.objects.count()
    print(machine())
    print(
        f"{options.deliveries} signed deliveries of products/update ({len(body)} bytes), "
        f"{options.clients} keep-alive clients, {options.web_processes} daphne processes"
    )
    print(f"answers: {dict(sorted(statuses.items()))}; events stored: {stored}")
    print(f"ingest: {options.deliveries / seconds:.0f} deliveries/s")
    print(
        f"latency: p50 {percentile(latencies, 0.5):.1f} ms, p95 {percentile(latencies, 0.95):.1f}"
        f" ms, p99 {percentile(latencies, 0.99):.1f} ms"
    )
    write_json(
        options.json,
        {
            "deliveries": options.deliveries,
            "clients": options.clients,
            "web_processes": options.web_processes,
            "answers": {str(status): n for status, n in sorted(statuses.items())},
            "stored": stored,
            "rate_per_s": round(options.deliveries / seconds, 1),
            "latency_ms": summary(latencies),
        },
    )


def web_command(port: int, processes: int) -> list[str]:
    where = ["--port", str(port), "--processes", str(processes)]
    return [sys.executable, "-m", "aios_site.cli", "web", *where]


def _connect_store() -> None:
    from aios_site.accounts.services import user_ensure, workspace_create
    from approvals.audit import Actor
    from catalog.services import store_connect

    owner = user_ensure(email="owner@bench.example")
    workspace = workspace_create(name="Bench", slug="bench", owner=owner)
    store_connect(
        workspace=workspace,
        shop_domain=SHOP,
        access_token="bench-token",  # noqa: S106 - a bench shop, never called
        webhook_secrets=[SECRET],
        actor=Actor("user", "bench"),
    )


def _wait_healthy(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/healthz", timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("aios web did not start")


def signed_headers(topic: str, body: bytes, webhook_id: str) -> dict[str, str]:
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-API-Version": "2026-01",
    }


def _blast(port: int, body: bytes, options) -> tuple[list[float], float, dict[int, int]]:
    return blast(
        port,
        options.deliveries,
        options.clients,
        lambda n: (body, signed_headers("products/update", body, f"bench-{n}")),
    )


def blast(port: int, count: int, clients: int, delivery) -> tuple[list[float], float, dict]:
    """`count` deliveries (`delivery(n)` gives the body and headers of the n-th) POSTed by
    `clients` keep-alive connections; latencies in ms, seconds in all, answers by status."""
    counter = iter(range(count))
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            body, headers = delivery(n)
            started = time.perf_counter()
            connection.request("POST", "/api/v1/webhooks/shopify", body, headers)
            response = connection.getresponse()
            response.read()
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                statuses[response.status] = statuses.get(response.status, 0) + 1
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - started, statuses


if __name__ == "__main__":
    main()
