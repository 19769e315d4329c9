"""The eval scorecard on the shipped multilingual set: the local tier alone, then with a
scripted remote tier, side by side.

    python bench/evals.py [--dataset product-descriptions] [--limit N] [--json PATH]

Starts its own embedded PostgreSQL + Valkey and the demo workspace (its agents, policies and
the default approval policy), gives it the demo store's catalog (signed products/create
webhooks, processed and embedded, so product questions have facts to be answered from),
then runs agents/evals/data/support-messages.jsonl (177 messages, 10 languages) through the
support agent twice with `agents.evals.runner`, which proposes and sends nothing:

1. the local tier alone: lingua, the local intent classifier, the shop's templates;
2. with a scripted remote tier (bench/scripted_model.py as the workspace's provider): drafts
   restate the first fact given; a classification request is answered by a small keyword
   table (order words → track_order, delivery words → delivery_period, size/material/colour
   words → product_question, refund words → get_refund, else unknown). It is a stand-in for
   a real model's plumbing and cost, not a measure of any model's judgement: run `aios eval
   support-messages --workspace demo --provider <yours>` for that.

Prints, per configuration: language and intent accuracy, how many messages would have gone
out without a person and how many of those were right (the precision the default policy is
held to: >= 98 %), drafts that failed a check, product answers that state every required
fact, cost, and latency per message; then how many messages the two answered differently.

With `--dataset product-descriptions`: the 100 products (agents/evals/data) through the
description writer the same two ways (the scripted model restates the first product fact it
is given): descriptions in the language asked, with every measurement and material they must
state, inventing none, and how many failed a check.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scripted_model import ScriptedModel  # noqa: E402 - after the path it is found on

# The scripted model server listens on this machine.
os.environ.setdefault("AIOS_FETCH_PRIVATE_ADDRESSES", "true")

# The scripted remote tier's whole judgement: first match wins.
KEYWORDS = (
    ("get_refund", r"refund|money back|reembols|rembours|erstatt|rimbors|terugbetal|zwrot"),
    ("track_order", r"order|pedido|commande|bestellung|ordine|encomenda|bestelling|zamówien"),
    ("delivery_period", r"deliver|shipping|envío|livraison|lieferung|spedizione|entrega"),
    ("product_question", r"size|material|colou?r|talla|taille|größe|taglia|tamanho|maat"),
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="support-messages")
    parser.add_argument("--limit", type=int, default=None, help="the first N items only")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    options = parser.parse_args()

    from runtime import django_on_embedded_services, machine, write_json

    with django_on_embedded_services():
        from agents.evals import runner

        model = ScriptedClassifier()
        try:
            workspace = _demo(model.base_url)
            print(machine())
            local = _eval(runner, workspace, options.dataset, "", options.limit)
            remote = _eval(runner, workspace, options.dataset, "scripted", options.limit)
        finally:
            model.close()
        _print(local, remote)
        for shown in (local, remote):
            for result in shown.results.exclude(error="")[:3]:
                print(f"  {shown.label}, {result.item_id} not answered: {result.error[:200]}")
        differing = sum(1 for row in runner.compared(local, remote) if row["differs"])
        print(f"answered differently by the two: {differing} of {local.scores['items']}")
        write_json(
            options.json,
            {"local": local.scores, "scripted_remote": remote.scores, "differing": differing},
        )


def _eval(runner, workspace, dataset: str, provider: str, limit):
    started = runner.eval_start(
        workspace=workspace, dataset=dataset, provider=provider, limit=limit
    )
    return runner.eval_execute(eval_run_id=started.pk, limit=limit)


def _print(*evals) -> None:
    from agents.management.commands.eval import scorecard

    print("\n".join(scorecard(evals)))


def _demo(model_url: str):
    from django.test import Client

    from agents.llm.intents import examples_seed
    from agents.services.models import provider_save
    from aios_site.core.actors import SETUP
    from aios_site.prepare import demo_setup
    from catalog.content.services import content_agent_ensure
    from catalog.models import WebhookEvent
    from catalog.services import demo_store_ensure, webhook_process
    from catalog.simulator.products import demo_products
    from memory.services import embed_pending

    demo = demo_setup()
    workspace = demo.workspace
    provider_save(
        workspace=workspace,
        name="scripted",
        base_url=model_url,
        api_key="bench",
        model_small="scripted-small",
        model_large="scripted-large",
        prices={
            "scripted-small": {
                "input_per_million": Decimal("0.15"),
                "output_per_million": Decimal("0.60"),
            },
            "scripted-large": {
                "input_per_million": Decimal("2.50"),
                "output_per_million": Decimal("10"),
            },
        },
        allow_private=True,  # the bench's own scripted model server, on this machine
    )
    examples_seed(workspace_id=workspace.pk)
    content_agent_ensure(workspace=workspace, actor=SETUP)  # a shop's first brief adds it
    shop = demo_store_ensure(workspace=workspace, simulator_url="http://127.0.0.1:1")
    client = Client(HTTP_HOST="localhost")
    for number, product in enumerate(demo_products(shop["shop"]), start=1):
        _deliver(client, shop, "products/create", product, f"bench-{number}")
    for pk in (
        WebhookEvent.objects.filter(status="received").order_by("pk").values_list("pk", flat=True)
    ):
        webhook_process(event_id=pk)
    embed_pending()
    return workspace


def _deliver(client, shop: dict[str, str], topic: str, body: dict, webhook_id: str) -> None:
    raw = json.dumps(body).encode()
    digest = hmac.new(shop["secret"].encode(), raw, hashlib.sha256).digest()
    response = client.post(
        "/api/v1/webhooks/shopify",
        raw,
        content_type="application/json",
        HTTP_X_SHOPIFY_TOPIC=topic,
        HTTP_X_SHOPIFY_HMAC_SHA256=base64.b64encode(digest).decode(),
        HTTP_X_SHOPIFY_SHOP_DOMAIN=shop["shop"],
        HTTP_X_SHOPIFY_WEBHOOK_ID=webhook_id,
        HTTP_X_SHOPIFY_API_VERSION="2026-01",
    )
    if response.status_code >= 300:
        raise SystemExit(f"the demo product was refused: {response.status_code}")


def _classification(messages: list[dict[str, Any]]) -> str | None:
    """The keyword table's answer to a classification request, else None."""
    if not messages or not str(messages[0].get("content", "")).startswith(
        "You classify customer messages"
    ):
        return None
    texts = re.findall(
        r"<<<DATA message \d+ [0-9a-f]+>>>\n(.*?)\n<<<END DATA", messages[-1]["content"], re.S
    )
    intents = []
    for text in texts:
        lowered = text.lower()
        intents.append(
            next((name for name, words in KEYWORDS if re.search(words, lowered)), "unknown")
        )
    return json.dumps({"intents": intents})


class ScriptedClassifier(ScriptedModel):
    """bench/scripted_model.py, answering classification requests from the keyword table."""

    def answer(self, messages: list[dict[str, Any]]) -> str:
        return _classification(messages) or super().answer(messages)


if __name__ == "__main__":
    main()
