"""Webhook → pipeline: signed inventory deliveries until every run they start has finished.

    python bench/webhook_runs.py [--events 300] [--clients 8] [--concurrency 2]

Starts its own embedded PostgreSQL + Valkey, `aios web` and one Celery worker, connects a
store with `--events` products (one variant each, selling while out of stock), then POSTs an
`inventory_levels/update` to 0 for each. Each delivery is verified and stored, a worker
processes it, which starts the inventory watcher's run: read the stock (journaled), raise
an alert, propose a restock note (auto-approved by the default policy), commit it into
memory, resume and finish. That is the whole catalog pipeline, not a trivial one: six
tasks and a dozen checkpoints and journal rows per event. Prints the ingest rate and the
rate at which runs finished, from the first delivery to the last finished run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from webhooks import SHOP, _connect_store, _wait_healthy, blast, signed_headers  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=2)
    options = parser.parse_args()

    from runtime import django_on_embedded_services, machine

    with django_on_embedded_services():
        _connect_store()
        _seed_intents_after_connecting()
        _stock(options.events)
        from tests.helpers import free_port

        port = free_port()
        env = dict(os.environ)
        web = subprocess.Popen(
            [sys.executable, "-m", "aios_site.cli", "web", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        worker = subprocess.Popen(
            [sys.executable, "-m", "aios_site.cli", "worker", "-c", str(options.concurrency)],
            env={**env, "AIOS_LOG_LEVEL": "WARNING"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait_healthy(port)
            time.sleep(3)  # the worker connects to the broker
            started = time.perf_counter()
            ingest_seconds = _deliver(port, options)
            finished, statuses = _wait_for_runs(options.events)
            total = time.perf_counter() - started
        finally:
            web.terminate()
            os.killpg(worker.pid, 15)
            web.wait(timeout=20)
            worker.wait(timeout=30)
    print(machine())
    print(
        f"{options.events} inventory_levels/update deliveries, {options.clients} clients, one "
        f"daphne process, one worker with {options.concurrency} processes"
    )
    print(f"ingest: {options.events / ingest_seconds:.0f} deliveries/s")
    print(f"runs: {dict(sorted(statuses.items()))}")
    print(f"webhook → finished run: {finished / total:.1f} runs/s ({total:.1f} s in all)")


def _seed_intents_after_connecting() -> None:
    """One example, before the worker starts: the full seed that connecting the store queued
    then finds examples and adds nothing (embedding it would blur the figure)."""
    from agents.llm.intents import examples_add
    from catalog.models import StoreConnection

    workspace_id = StoreConnection.objects.get(shop_domain=SHOP).workspace_id
    examples_add(
        workspace_id=workspace_id, examples=[("where is my order", "track_order")], source="bench"
    )


def _stock(count: int) -> None:
    from catalog.models import Product, StoreConnection, Variant

    store = StoreConnection.objects.get(shop_domain=SHOP)
    for n in range(1, count + 1):
        product = Product.objects.create(
            workspace=store.workspace,
            connection=store,
            external_id=n,
            title=f"Product {n}",
            status="active",
            body_html="<p>" + "described " * 30 + "</p>",
        )
        Variant.objects.create(
            product=product,
            external_id=n,
            title="Default Title",
            inventory_item_id=n,
            inventory_quantity=5,
            inventory_policy="continue",
        )


def _deliver(port: int, options) -> float:
    """Each delivery takes one product's stock to 0."""

    def delivery(n: int) -> tuple[bytes, dict[str, str]]:
        body = json.dumps({"inventory_item_id": n + 1, "location_id": 1, "available": 0})
        return body.encode(), signed_headers("inventory_levels/update", body.encode(), f"stock-{n}")

    _, seconds, _ = blast(port, options.events, options.clients, delivery)
    return seconds


def _wait_for_runs(expected: int, timeout: float = 900) -> tuple[int, dict[str, int]]:
    from django.db.models import Count

    from agents.models import Run

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = dict(Run.objects.values_list("status").annotate(n=Count("id")))
        finished = statuses.get("succeeded", 0) + statuses.get("failed", 0)
        if finished >= expected:
            return finished, statuses
        time.sleep(0.25)
    return finished, statuses


if __name__ == "__main__":
    main()
