"""Importing a catalog from Shopify's product CSV export.

Rows sharing a Handle are one product: the first carries the product's fields, the others
add variants (by their option values) or only images. Products and variants get stable ids
derived from the handle and options, so importing the same file again updates in place.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from typing import Any

from django.db import transaction

from catalog.models import Product, StoreConnection, Variant
from catalog.services import decimal_or_none, product_remember
from memory.services import Source, embed_soon

REQUIRED = {"Handle", "Title", "Variant Price"}


def stable_id(*parts: str) -> int:
    """A positive 60-bit id from text: the same handle always gives the same product."""
    return int(hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:15], 16)


def products_from_csv(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = REQUIRED - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"not a Shopify product CSV: missing {', '.join(sorted(missing))}")
    products: dict[str, dict[str, Any]] = {}
    for row in reader:
        handle = (row.get("Handle") or "").strip()
        if not handle:
            continue
        product = products.get(handle)
        if product is None:
            product = products[handle] = {
                "handle": handle,
                "title": row.get("Title") or handle,
                "body_html": row.get("Body (HTML)") or "",
                "vendor": row.get("Vendor") or "",
                "product_type": row.get("Type") or "",
                "tags": row.get("Tags") or "",
                "status": "active" if (row.get("Published") or "").lower() == "true" else "draft",
                "variants": [],
                "option_names": [row.get(f"Option{n} Name") or "" for n in (1, 2, 3)],
            }
        options = [row.get(f"Option{n} Value") or "" for n in (1, 2, 3)]
        if any(options) or row.get("Variant Price"):
            product["variants"].append(
                {
                    "title": " / ".join(o for o in options if o) or "Default Title",
                    "sku": row.get("Variant SKU") or "",
                    "price": row.get("Variant Price"),
                    "compare_at_price": row.get("Variant Compare At Price"),
                    "inventory_quantity": _int(row.get("Variant Inventory Qty")),
                    "inventory_policy": row.get("Variant Inventory Policy") or "deny",
                    "cost": row.get("Cost per item"),
                    "options": options,
                }
            )
    return list(products.values())


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def catalog_import_csv(
    *,
    connection: StoreConnection,
    text: str,
    progress: Callable[[int, int], None] = lambda d, t: None,
) -> int:
    """Upserts every product of the file (a transaction per product) and mirrors each into
    memory; returns how many. `progress(done, total)` is called after each."""
    products = products_from_csv(text)
    source = Source("catalog", ref=f"{connection.shop_domain} CSV import")
    for done, data in enumerate(products, start=1):
        with transaction.atomic():
            _upsert(connection, data, source)
        progress(done, len(products))
    transaction.on_commit(embed_soon)
    return len(products)


def _upsert(connection: StoreConnection, data: dict[str, Any], source: Source) -> None:
    external_id = stable_id(connection.shop_domain, data["handle"])
    product, _ = Product.objects.update_or_create(
        connection=connection,
        external_id=external_id,
        defaults={
            "workspace": connection.workspace,
            **{
                k: data[k]
                for k in (
                    "handle",
                    "title",
                    "body_html",
                    "vendor",
                    "product_type",
                    "tags",
                    "status",
                )
            },
            "deleted_at": None,
            "raw": {"options": _options(data)},
        },
    )
    kept = []
    for position, variant in enumerate(_unique(data["variants"]), start=1):
        row, _ = Variant.objects.update_or_create(
            product=product,
            external_id=stable_id(connection.shop_domain, data["handle"], *variant["options"]),
            defaults={
                "title": variant["title"][:255],
                "sku": variant["sku"][:255],
                "price": decimal_or_none(variant["price"]),
                "compare_at_price": decimal_or_none(variant["compare_at_price"]),
                "inventory_quantity": variant["inventory_quantity"],
                "inventory_policy": variant["inventory_policy"][:20],
                "cost": decimal_or_none(variant["cost"]),
                "position": position,
            },
        )
        kept.append(row.pk)
    product.variants.exclude(pk__in=kept).delete()
    product_remember(product, source=source, embed_later=False)


def _options(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Shopify's `options` shape: [{"name": "Size", "values": ["S", "M"]}, …]."""
    options = []
    for index, name in enumerate(data["option_names"]):
        values = list(dict.fromkeys(v["options"][index] for v in data["variants"]))
        if name and name != "Title" and any(values):
            options.append({"name": name, "values": [v for v in values if v]})
    return options


def _unique(variants: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    seen = set()
    for variant in variants:
        key = tuple(variant["options"])
        if key not in seen:
            seen.add(key)
            yield variant
