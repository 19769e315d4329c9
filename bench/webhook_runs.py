"""Webhook → pipeline: signed deliveries until every run they start has finished.

    python bench/webhook_runs.py [--pipeline inventory|noop] [--events 300] [--clients 8]
                                 [--concurrency 2] [--web-processes 2] [--json PATH]

`--pipeline noop` measures the trivial case: an agent set to start on `carts/update` runs
`demo.noop` (three empty, checkpointed steps) for each delivery, so the figure is the
ingest, the processing, the run start and the engine, with no work of the pipeline's own.

By default (`--pipeline inventory`) the whole catalog pipeline, not a trivial one: a store
with `--events` products (one variant each, selling while out of stock) gets an
`inventory_levels/update` to 0 for each; a worker processes each delivery, which starts the
inventory watcher's run: read the stock (journaled), raise an alert, propose a restock note
(auto-approved by the default policy), commit it into memory, resume and finish, six tasks
and a dozen checkpoints and journal rows per event.

Either way it starts its own embedded PostgreSQL + Valkey, `aios web` and one Celery worker,
and prints the ingest rate and the rate at which runs finished, from the first delivery to
the last finished run (and writes them to PATH with `--json`).
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

from webhooks import SHOP, _connect_store, _wait_healthy, blast, signed_headers, web_command  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--web-processes", type=int, default=2)
    parser.add_argument("--pipeline", choices=["inventory", "noop"], default="inventory")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    options = parser.parse_args()

    from runtime import django_on_embedded_services, machine, write_json

    with django_on_embedded_services():
        _connect_store()
        _seed_intents_after_connecting()
        if options.pipeline == "noop":
            _noop_agent()
        else:
            _stock(options.events)
        from tests.helpers import free_port

        port = free_port()
        env = dict(os.environ)
        web = subprocess.Popen(
            web_command(port, options.web_processes),
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
        f"{options.events} {TOPICS[options.pipeline]} deliveries, {options.clients} clients, "
        f"{options.web_processes} daphne processes, one worker with {options.concurrency} "
        f"processes, pipeline: {options.pipeline}"
    )
    print(f"ingest: {options.events / ingest_seconds:.0f} deliveries/s")
    print(f"runs: {dict(sorted(statuses.items()))}")
    print(f"webhook → finished run: {finished / total:.1f} runs/s ({total:.1f} s in all)")
    if finished < options.events:
        raise SystemExit(f"only {finished} of {options.events} runs finished")
    write_json(
        options.json,
        {
            "pipeline": options.pipeline,
            "events": options.events,
            "concurrency": options.concurrency,
            "web_processes": options.web_processes,
            "ingest_per_s": round(options.events / ingest_seconds, 1),
            "runs": statuses,
            "runs_per_s": round(finished / total, 1),
            "seconds": round(total, 1),
        },
    )


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


def _noop_agent() -> None:
    from agents.models import Agent
    from catalog.models import StoreConnection

    workspace = StoreConnection.objects.get(shop_domain=SHOP).workspace
    Agent.objects.create(
        workspace=workspace,
        slug="carts",
        name="Cart watcher (no-op)",
        pipeline="demo.noop",
        webhook_topics=[TOPICS["noop"]],
    )


TOPICS = {"inventory": "inventory_levels/update", "noop": "carts/update"}


def _deliver(port: int, options) -> float:
    """Inventory: each delivery takes one product's stock to 0. Noop: a cart update each."""
    topic = TOPICS[options.pipeline]

    def delivery(n: int) -> tuple[bytes, dict[str, str]]:
        if options.pipeline == "noop":
            body = json.dumps({"id": f"cart-{n}", "token": f"cart-{n}", "line_items": []})
        else:
            body = json.dumps({"inventory_item_id": n + 1, "location_id": 1, "available": 0})
        return body.encode(), signed_headers(topic, body.encode(), f"{topic}-{n}")

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
