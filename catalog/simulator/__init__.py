"""A local store that speaks Shopify's wire format both ways, for tests, the demo and
benchmarks. Standard library only (no Django), so it runs without a database.

Inbound it serves the part of the Admin REST API that AIOS uses (products and variants,
read and write, behind `X-Shopify-Access-Token`), applies each `Idempotency-Key` once and
records every write; `POST /outbound/replies` takes the signed replies AIOS sends.
Outbound it sends signed webhooks and customer messages to AIOS, from a scenario:
`shop-day` (a day at a small shop, the same for the same seed) or `steady` (endless).

    aios simulate-store --target http://127.0.0.1:8000 --secret S [--scenario shop-day]
    python -m catalog.simulator ...                              the same

For tests and out-of-process drivers: GET /_sim/writes, GET /_sim/replies, GET /_sim/health,
POST /_sim/faults {"status": 429, "count": 2, "retry_after": 1.5}.

    products.py   the demo catalog and Shopify product CSVs, as Shopify products
    store.py      StoreSimulator: the HTTP side, both ways
    scenarios.py  shop_day and steady: events over time
    command.py    main(): the command
"""

from __future__ import annotations

from catalog.simulator.command import deliver, main, run
from catalog.simulator.products import (
    DEFAULT_SHOP,
    demo_messages,
    demo_products,
    load_products_csv,
    shopify_product,
    stable_id,
)
from catalog.simulator.scenarios import MESSAGE, Event, shop_day, steady
from catalog.simulator.store import Request, Response, StoreSimulator

__all__ = [
    "DEFAULT_SHOP",
    "MESSAGE",
    "Event",
    "Request",
    "Response",
    "StoreSimulator",
    "deliver",
    "demo_messages",
    "demo_products",
    "load_products_csv",
    "main",
    "run",
    "shop_day",
    "shopify_product",
    "stable_id",
    "steady",
]
