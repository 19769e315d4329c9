"""The simulator's catalog: the vendored demo shop, or Shopify product CSVs, as Shopify
products with stable ids."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "data"  # catalog/data
DEFAULT_SHOP = "demo-shop.myshopify.com"
API_VERSION = "2026-01"
CENT = Decimal("0.01")
# When the demo shop listed its catalog: before any scenario, so scenario events are newer.
CATALOG_LISTED_AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def stable_id(*parts: str) -> int:
    """A positive 60-bit id from text, computed as `catalog.imports.stable_id` does: a CSV the
    simulator serves and the same CSV imported into AIOS agree on every id."""
    return int(hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:15], 16)


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def money(value: Any) -> str:
    """Shopify's money: a string with two decimals. ValueError when it is not a number."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not a number: {value!r}")
    return str(amount.quantize(CENT))


# -- the catalog ------------------------------------------------------------------------------


def demo_products(shop_domain: str = DEFAULT_SHOP) -> list[dict[str, Any]]:
    """The vendored demo catalog (catalog/data/demo-store.json) as Shopify products."""
    data = json.loads((DATA / "demo-store.json").read_text(encoding="utf-8"))
    return [shopify_product(shop_domain, product) for product in data["products"]]


def demo_messages() -> list[dict[str, Any]]:
    """The vendored customer messages (catalog/data/demo-messages.json)."""
    return json.loads((DATA / "demo-messages.json").read_text(encoding="utf-8"))["messages"]


def shopify_product(
    shop_domain: str, data: dict[str, Any], *, at: datetime = CATALOG_LISTED_AT
) -> dict[str, Any]:
    """A product in Shopify's REST shape, from the few fields a catalog file gives."""
    handle = data["handle"]
    product_id = stable_id(shop_domain, handle)
    variants = [
        _variant(shop_domain, handle, product_id, variant, position, at)
        for position, variant in enumerate(data["variants"], start=1)
    ]
    names = data.get("options") or ["Title"]
    options = [
        {
            "id": stable_id(shop_domain, handle, "option", name),
            "product_id": product_id,
            "name": name,
            "position": n,
            "values": list(dict.fromkeys(v[f"option{n}"] for v in variants if v[f"option{n}"])),
        }
        for n, name in enumerate(names[:3], start=1)
    ]
    return {
        "id": product_id,
        "admin_graphql_api_id": f"gid://shopify/Product/{product_id}",
        "title": data["title"],
        "handle": handle,
        "body_html": data.get("body_html") or "",
        "vendor": data.get("vendor") or "",
        "product_type": data.get("product_type") or "",
        "tags": data.get("tags") or "",
        "status": data.get("status") or "active",
        "published_scope": "web",
        "template_suffix": None,
        "created_at": iso(at),
        "updated_at": iso(at),
        "published_at": iso(at),
        "variants": variants,
        "options": options,
        "images": [],
        "image": None,
    }


def _variant(shop_domain, handle, product_id, data, position, at) -> dict[str, Any]:
    options = [data.get(f"option{n}") or "" for n in (1, 2, 3)]
    variant_id = stable_id(shop_domain, handle, *options)
    stock = int(data.get("inventory_quantity") or 0)
    return {
        "id": variant_id,
        "admin_graphql_api_id": f"gid://shopify/ProductVariant/{variant_id}",
        "product_id": product_id,
        "title": " / ".join(o for o in options if o) or "Default Title",
        "price": money(data.get("price") or 0),
        "compare_at_price": money(data["compare_at_price"])
        if data.get("compare_at_price")
        else None,
        "cost": data.get("cost"),  # what the shop pays; Shopify keeps it on the inventory item
        "sku": data.get("sku") or "",
        "barcode": None,
        "position": position,
        "option1": options[0] or None,
        "option2": options[1] or None,
        "option3": options[2] or None,
        "inventory_item_id": stable_id(shop_domain, handle, *options, "inventory-item"),
        "inventory_quantity": stock,
        "old_inventory_quantity": stock,
        "inventory_policy": "deny",
        "inventory_management": "shopify",
        "taxable": True,
        "requires_shipping": True,
        "grams": int(data.get("grams") or 0),
        "created_at": iso(at),
        "updated_at": iso(at),
    }


def load_products_csv(path: str | Path, *, shop_domain: str = DEFAULT_SHOP) -> list[dict]:
    """Shopify's product CSV export as Shopify products, grouped as `catalog.imports` groups
    them (rows sharing a Handle; a variant per distinct set of option values)."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"Handle", "Title", "Variant Price"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"not a Shopify product CSV: missing {', '.join(sorted(missing))}")
        products: dict[str, dict[str, Any]] = {}
        for row in reader:
            _csv_row_add(products, row, shop_domain)
    return [shopify_product(shop_domain, data) for data in products.values() if data["variants"]]


def _csv_row_add(products: dict[str, dict], row: dict[str, str], shop_domain: str) -> None:
    handle = (row.get("Handle") or "").strip()
    if not handle:
        return
    if handle not in products:
        products[handle] = {
            "handle": handle,
            "title": row.get("Title") or handle,
            "body_html": row.get("Body (HTML)") or "",
            "vendor": row.get("Vendor") or "",
            "product_type": row.get("Type") or "",
            "tags": row.get("Tags") or "",
            "status": "active" if (row.get("Published") or "").lower() == "true" else "draft",
            "options": [row.get(f"Option{n} Name") or "" for n in (1, 2, 3)],
            "variants": [],
        }
    product = products[handle]
    options = [row.get(f"Option{n} Value") or "" for n in (1, 2, 3)]
    known = {tuple(v[f"option{n}"] for n in (1, 2, 3)) for v in product["variants"]}
    if (any(options) or row.get("Variant Price")) and tuple(options) not in known:
        product["variants"].append(
            {
                **{f"option{n}": value for n, value in enumerate(options, start=1)},
                "sku": row.get("Variant SKU") or "",
                "price": row.get("Variant Price") or "0",
                "compare_at_price": row.get("Variant Compare At Price") or None,
                "cost": row.get("Cost per item") or None,
                "grams": int_or_zero(row.get("Variant Grams")),
                "inventory_quantity": _csv_stock(row, shop_domain, handle, options),
            }
        )
    product["options"] = [name for name in product["options"] if name] or ["Title"]


def _csv_stock(row, shop_domain, handle, options) -> int:
    # Shopify's sample CSVs track almost no stock; a shop with nothing to sell makes a dull
    # day, so an untracked variant gets a stock of 5-29, the same on every run.
    stock = int_or_zero(row.get("Variant Inventory Qty"))
    return stock if stock > 0 else 5 + stable_id(shop_domain, handle, *options) % 25


def int_or_zero(value: str | None) -> int:
    try:
        return int(float(value or 0))
    except ValueError:
        return 0
