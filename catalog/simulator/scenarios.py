"""Scenarios: what happens at the shop, as events to send."""

from __future__ import annotations

import copy
import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from catalog.simulator.products import (
    CENT,
    DEFAULT_SHOP,
    demo_messages,
    iso,
    money,
    stable_id,
    utc_now,
)

MESSAGE = "message"  # an event's topic when it is a customer's message, not a webhook
FREE_SHIPPING_FROM, SHIPPING = Decimal("60.00"), Decimal("4.90")
ADDRESSES = {
    "en": ("London", "EC1A 1BB", "United Kingdom", "GB"),
    "es": ("Valencia", "46001", "Spain", "ES"),
    "fr": ("Lyon", "69001", "France", "FR"),
    "de": ("Leipzig", "04109", "Germany", "DE"),
}
LOCATION_ID = 61200001


@dataclass(frozen=True)
class Event:
    """Something that happens at the shop: a webhook topic, or MESSAGE for a customer's."""

    topic: str
    payload: dict[str, Any]
    at: datetime
    summary: str  # for the line printed when it is sent


class _Shop:
    """A scenario's running state of the shop: the catalog with its stock, the customers,
    the next order number."""

    def __init__(self, shop_domain: str, products, messages, rng: random.Random, first_order=1001):
        self.domain = shop_domain
        self.products = copy.deepcopy(list(products))
        self.messages = messages
        self.rng = rng
        self.next_number = first_order
        self.customers = [_customer(shop_domain, m) for m in _unique_customers(messages)]
        self._by_order = {}
        for message in messages:
            if message.get("order_ref"):
                self._by_order.setdefault(message["order_ref"], _customer(shop_domain, message))

    def listed(self, product: dict, at: datetime, topic="products/create") -> list[Event]:
        product["updated_at"] = iso(at)
        if topic == "products/create":
            product["created_at"] = product["published_at"] = iso(at)
        return [Event(topic, copy.deepcopy(product), at, product["title"])]

    def on_sale(self, product: dict, at: datetime) -> list[Event]:
        """The owner marks a product down by 15%: the old price becomes compare-at."""
        old = product["variants"][0]["price"]
        for variant in product["variants"]:
            variant["compare_at_price"] = variant["compare_at_price"] or variant["price"]
            marked_down = Decimal(variant["price"]) * Decimal("0.85")
            variant["price"] = money(marked_down.quantize(Decimal("0.1")))
        product["tags"] = ", ".join(filter(None, [product["tags"], "sale"]))
        [event] = self.listed(product, at, topic="products/update")
        new = product["variants"][0]["price"]
        return [replace(event, summary=f"{product['title']}: on sale, {old} → {new}")]

    def order_placed(self, at: datetime, lines: list[tuple[dict, dict, int]]) -> list[Event]:
        """orders/create, then a stock move for each line, seconds later."""
        name = f"#{self.next_number}"
        self.next_number += 1
        customer = self._by_order.get(name) or self.rng.choice(self.customers)
        payload = _order(self.domain, name, at, customer, lines)
        items = sum(quantity for _, _, quantity in lines)
        events = [
            Event("orders/create", payload, at, f"{name}, {items} item(s), {customer['email']}")
        ]
        for n, (product, variant, quantity) in enumerate(lines, start=1):
            variant["old_inventory_quantity"] = variant["inventory_quantity"]
            variant["inventory_quantity"] -= quantity
            events.append(self.stock_moved(product, variant, at + timedelta(seconds=2 * n)))
        return events

    def stock_moved(self, product: dict, variant: dict, at: datetime, note: str = "") -> Event:
        available = variant["inventory_quantity"]
        item = variant["inventory_item_id"]
        payload = {
            "inventory_item_id": item,
            "location_id": LOCATION_ID,
            "available": available,
            "updated_at": iso(at),
            "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{LOCATION_ID}"
            f"?inventory_item_id={item}",
        }
        if not note and all(v["inventory_quantity"] <= 0 for v in product["variants"]):
            note = " (sold out)"
        name = product["title"] + (
            "" if len(product["variants"]) == 1 else f" / {variant['title']}"
        )
        summary = f"{name}: {available} left{note}"
        return Event("inventory_levels/update", payload, at, summary)

    def message(self, message: dict, at: datetime, external_id: str) -> list[Event]:
        payload = {
            "store": self.domain,
            **{
                name: message.get(name) or ""
                for name in (
                    "customer_email",
                    "customer_name",
                    "channel",
                    "subject",
                    "body",
                    "order_ref",
                )
            },
            "external_id": external_id,
        }
        summary = f"{message['customer_email']}: {message.get('subject') or message['body'][:40]}"
        return [Event(MESSAGE, payload, at, summary)]

    def lines(self, wanted: list[tuple[dict, dict, int]], extra: int, avoid: dict | None):
        """The order's lines: those wanted, then `extra` random ones that leave stock behind
        (so only the product chosen to sell out does)."""
        lines = [line for line in wanted if line[1]["inventory_quantity"] >= line[2]]
        taken = {variant["id"] for _, variant, _ in lines}
        for _ in range(extra if lines else max(extra, 1)):
            quantity = 2 if self.rng.random() < 0.15 else 1
            choices = [
                (product, variant)
                for product in self.products
                if product is not avoid
                for variant in product["variants"]
                if variant["inventory_quantity"] > quantity and variant["id"] not in taken
            ]
            if choices:
                product, variant = self.rng.choice(choices)
                lines.append((product, variant, quantity))
                taken.add(variant["id"])
        return lines

    def wanted(self, message: dict | None) -> list[tuple[dict, dict, int]]:
        """What a message says its order holds, from the catalog (when the catalog has it)."""
        lines = []
        for item in (message or {}).get("items", []):
            product = next((p for p in self.products if p["handle"] == item["handle"]), None)
            if product is None:
                continue
            quantity = int(item.get("quantity", 1))
            variants = [
                v
                for v in product["variants"]
                if item.get("option1") in (None, v["option1"])
                and v["inventory_quantity"] > quantity
            ]
            if variants:
                lines.append((product, self.rng.choice(variants), quantity))
        return lines


def _unique_customers(messages: list[dict]) -> list[dict]:
    unique = list({m["customer_email"]: m for m in messages}.values())
    return unique or [{"customer_name": "Sam Doe", "customer_email": "sam.doe@example.com"}]


def _customer(shop_domain: str, message: dict) -> dict[str, Any]:
    first, _, last = message["customer_name"].partition(" ")
    email = message["customer_email"]
    customer_id = stable_id(shop_domain, "customer", email)
    return {
        "id": customer_id,
        "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}",
        "email": email,
        "first_name": first,
        "last_name": last,
        "phone": None,
        "locale": message.get("language") or "en",
        "state": "enabled",
        "verified_email": True,
        "tax_exempt": False,
        "currency": "EUR",
        "note": None,
        "tags": "",
    }


def _order(shop_domain: str, name: str, at: datetime, customer: dict, lines) -> dict[str, Any]:
    """An order in the shape of Shopify's orders/create payload."""
    order_id = stable_id(shop_domain, "order", name)
    subtotal = sum((Decimal(v["price"]) * q for _, v, q in lines), Decimal("0.00"))
    shipping = Decimal("0.00") if subtotal >= FREE_SHIPPING_FROM else SHIPPING
    total = subtotal + shipping
    tax = (total - total / Decimal("1.2")).quantize(CENT)  # prices include 20% VAT
    city, postcode, country, country_code = ADDRESSES.get(customer["locale"], ADDRESSES["en"])
    full_name = f"{customer['first_name']} {customer['last_name']}".strip()
    address = {
        "first_name": customer["first_name"],
        "last_name": customer["last_name"],
        "name": full_name,
        "address1": f"{stable_id(name, 'street') % 90 + 1} Market Street",
        "city": city,
        "zip": postcode,
        "country": country,
        "country_code": country_code,
        "phone": None,
        "company": None,
    }
    money = {
        "subtotal_price": str(subtotal),
        "total_line_items_price": str(subtotal),
        "total_price": str(total),
        "current_subtotal_price": str(subtotal),
        "current_total_price": str(total),
        "total_tax": str(tax),
        "current_total_tax": str(tax),
        "total_discounts": "0.00",
        "current_total_discounts": "0.00",
        "total_outstanding": "0.00",
        "total_price_set": _money_set(total),
        "subtotal_price_set": _money_set(subtotal),
        "total_shipping_price_set": _money_set(shipping),
    }
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": name,
        "number": int(name[1:]) - 1000,
        "order_number": int(name[1:]),
        "email": customer["email"],
        "contact_email": customer["email"],
        "created_at": iso(at),
        "updated_at": iso(at),
        "processed_at": iso(at),
        "cancelled_at": None,
        "cancel_reason": None,
        "closed_at": None,
        "confirmed": True,
        "test": False,
        "currency": "EUR",
        "presentment_currency": "EUR",
        "financial_status": "paid",
        "fulfillment_status": None,
        "customer_locale": customer["locale"],
        "buyer_accepts_marketing": False,
        "source_name": "web",
        "tags": "",
        "note": None,
        "note_attributes": [],
        "taxes_included": True,
        "tax_lines": [],
        "discount_codes": [],
        "discount_applications": [],
        **money,
        "customer": customer,
        "billing_address": address,
        "shipping_address": address,
        "line_items": [_line_item(shop_domain, name, n, line) for n, line in enumerate(lines)],
        "shipping_lines": [
            {
                "id": stable_id(shop_domain, name, "shipping"),
                "title": "Standard shipping",
                "code": "standard",
                "source": "shopify",
                "price": str(shipping),
                "discounted_price": str(shipping),
                "tax_lines": [],
            }
        ],
        "fulfillments": [],
        "refunds": [],
        "returns": [],
    }


def _line_item(shop_domain: str, name: str, n: int, line) -> dict[str, Any]:
    product, variant, quantity = line
    item_id = stable_id(shop_domain, name, "line", str(n))
    variant_title = None if variant["title"] == "Default Title" else variant["title"]
    return {
        "id": item_id,
        "admin_graphql_api_id": f"gid://shopify/LineItem/{item_id}",
        "product_id": product["id"],
        "variant_id": variant["id"],
        "title": product["title"],
        "variant_title": variant_title,
        "name": f"{product['title']} - {variant_title}" if variant_title else product["title"],
        "sku": variant["sku"],
        "vendor": product["vendor"],
        "quantity": quantity,
        "current_quantity": quantity,
        "fulfillable_quantity": quantity,
        "price": variant["price"],
        "price_set": _money_set(Decimal(variant["price"])),
        "total_discount": "0.00",
        "grams": variant["grams"],
        "requires_shipping": True,
        "taxable": True,
        "gift_card": False,
        "product_exists": True,
        "fulfillment_service": "manual",
        "fulfillment_status": None,
        "variant_inventory_management": "shopify",
        "properties": [],
        "tax_lines": [],
        "discount_allocations": [],
    }


def _money_set(amount: Decimal) -> dict[str, dict[str, str]]:
    money = {"amount": str(amount.quantize(CENT)), "currency_code": "EUR"}
    return {"shop_money": money, "presentment_money": dict(money)}


def shop_day(
    *,
    products: list[dict[str, Any]],
    messages: list[dict[str, Any]] | None = None,
    shop_domain: str = DEFAULT_SHOP,
    seed: int = 7,
    start: datetime | None = None,
    orders: int = 22,
) -> list[Event]:
    """A day at the shop from `start` (opening, 08:00 of the simulated day; by default 12
    hours ago, so the day ends now): each product is listed, orders come in and move stock,
    one product sells out, customers write, one product goes on sale. The same for the same
    seed and start."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not a secret
    messages = demo_messages() if messages is None else messages
    start = start or utc_now().replace(microsecond=0) - timedelta(hours=12)
    shop = _Shop(shop_domain, products, messages, rng)
    plan: list[tuple[datetime, int, Callable[[datetime], list[Event]]]] = []
    order = itertools.count()

    def add(at: datetime, happening: Callable[[datetime], list[Event]]) -> None:
        plan.append((at, next(order), happening))

    for n, product in enumerate(shop.products):
        add(start + timedelta(minutes=2 * n), partial(shop.listed, product))
    order_times = sorted(_between(rng, start, 1, 11) for _ in range(orders))
    sellout = _sellout_product(shop)  # chosen once: once sold out it has no stock to choose by
    buyers, sellout_at = _sellout_plan(sellout, rng, order_times)
    for n, at in enumerate(order_times):
        message = _order_message(messages, f"#{1001 + n}")
        extra = 1 if rng.random() < 0.35 else 0
        add(at, partial(_day_order, shop, message, buyers.get(n, []), extra, sellout))
    for at, happening in _messages_plan(shop, rng, start, order_times, sellout, sellout_at, seed):
        add(at, happening)
    for_sale = [product for product in shop.products if product is not sellout]
    if for_sale:
        add(_between(rng, start, 4, 8), partial(shop.on_sale, rng.choice(for_sale)))
    events: list[Event] = []
    for at, _, happening in sorted(plan, key=lambda step: step[:2]):
        events.extend(happening(at))
    return events


def _between(rng: random.Random, start: datetime, from_hour: float, to_hour: float) -> datetime:
    return start + timedelta(seconds=round(rng.uniform(from_hour * 3600, to_hour * 3600)))


def _order_message(messages: list[dict], name: str) -> dict | None:
    return next((m for m in messages if m.get("order_ref") == name and m.get("items")), None)


def _day_order(shop: _Shop, message, forced, extra, sellout, at) -> list[Event]:
    lines = shop.lines(shop.wanted(message) + forced, extra, avoid=sellout)
    return shop.order_placed(at, lines) if lines else []


def _sellout_product(shop: _Shop) -> dict | None:
    """The single-variant product with the least stock: the one that sells out today."""
    single = [p for p in shop.products if len(p["variants"]) == 1]
    stocked = [p for p in single if p["variants"][0]["inventory_quantity"] > 0]
    return min(stocked, key=lambda p: p["variants"][0]["inventory_quantity"], default=None)


def _sellout_plan(product: dict | None, rng, order_times: list[datetime]):
    """Which orders buy the sell-out product (its whole stock, over up to three orders),
    and when the last of them comes."""
    if product is None or not order_times:
        return {}, None
    variant = product["variants"][0]
    stock = variant["inventory_quantity"]
    buyers = sorted(rng.sample(range(len(order_times)), min(3, stock, len(order_times))))
    quantities = [stock // len(buyers) + (n < stock % len(buyers)) for n in range(len(buyers))]
    plan = {order: [(product, variant, q)] for order, q in zip(buyers, quantities, strict=True)}
    return plan, order_times[buyers[-1]]


def _messages_plan(shop: _Shop, rng, start, order_times, sold_out, sellout_at, seed):
    """When each customer writes: after the order they write about, after the sell-out when
    they ask about that product, an hour after their own earlier message about the order."""
    last_about: dict[str, datetime] = {}
    closes = start + timedelta(hours=12)
    for n, message in enumerate(shop.messages):
        earliest = start + timedelta(hours=1)
        ref = message.get("order_ref") or ""
        number = int(ref[1:]) - 1001 if ref[1:].isdigit() else -1
        if 0 <= number < len(order_times):
            earliest = max(earliest, order_times[number] + timedelta(minutes=20))
        if ref in last_about:
            earliest = max(earliest, last_about[ref] + timedelta(hours=1))
        if sold_out and sellout_at and message.get("product") == sold_out["handle"]:
            earliest = max(earliest, sellout_at + timedelta(minutes=20))
        room = max((closes - earliest).total_seconds(), 0)
        at = earliest + timedelta(seconds=round(rng.uniform(0, room)))
        if ref:
            last_about[ref] = at
        yield at, partial(shop.message, message, external_id=f"sim-day-{seed}-{n + 1:02d}")


def steady(
    *,
    products: list[dict[str, Any]] | Callable[[], list[dict[str, Any]]],
    messages: list[dict[str, Any]] | None = None,
    shop_domain: str = DEFAULT_SHOP,
    seed: int = 7,
    clock: Callable[[], datetime] = utc_now,
    first_order: int = 1001,
) -> Iterator[Event]:
    """Endless, for the live demo: the catalog listed, then orders with their stock moves,
    customers' messages and restocks, in a mix fixed by the seed, timed by the clock.
    `products` may be a callable giving the live catalog, so that prices changed through the
    Admin API show in later orders."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not a secret
    messages = demo_messages() if messages is None else messages
    live = products if callable(products) else None
    shop = _Shop(shop_domain, live() if live else products, messages, rng, first_order)
    run = int(clock().timestamp())  # message ids unique to this run
    for product in shop.products:
        yield from shop.listed(product, clock())
    for n in itertools.count(1):
        if live:
            shop.products = live()
        if rng.random() < 0.65:
            extra = 1 if rng.random() < 0.35 else 0
            lines = shop.lines([], extra, avoid=None)
            if lines:
                yield from shop.order_placed(clock(), lines)
            yield from _restocks(shop, clock())
            continue
        placed = {f"#{number}" for number in range(first_order, shop.next_number)}
        ready = [m for m in messages if (m.get("order_ref") or "") in placed | {""}]
        if ready:
            yield from shop.message(rng.choice(ready), clock(), f"sim-{run}-{n}")


def _restocks(shop: _Shop, at: datetime) -> Iterator[Event]:
    for product in shop.products:
        for variant in product["variants"]:
            if variant["inventory_quantity"] <= 1:
                variant["inventory_quantity"] = 20 + shop.rng.randrange(20)
                yield shop.stock_moved(product, variant, at, note=" (restocked)")


SCENARIOS = ("shop-day", "steady", "none")
