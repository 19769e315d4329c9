"""Writes product-descriptions.jsonl: the products a description writer is measured on.

    python agents/evals/data/make_product_descriptions.py

The products are the demo store's ten (catalog/data/demo-store.json, invented for AIOS, in
English, Spanish, French and German) and the sixty of Shopify's sample catalogs
(tests/data/shopify-products, MIT, in English). The labels follow rules, written here so a
reviewer can check them against each line (README.md says why):

- `must_contain`: every measurement the product's own text states (`170 g/m²`, `30 °C`,
  `45 x 45 cm`), in every language; and, in English, every material it names (`linen`,
  `wool`): a description that leaves out what a thing is made of or its size is not good.
- `must_not_contain`: in English, the common materials the product's text does not name: a
  description that says "leather" of a waxed canvas tote invents it.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "catalog" / "data" / "demo-store.json"
SAMPLES = ROOT / "tests" / "data" / "shopify-products"
OUT = Path(__file__).resolve().parent / "product-descriptions.jsonl"
DEMO_LANGUAGES = ("en", "es", "fr", "de")
INVENTED = ("leather", "silk", "polyester", "bamboo", "plastic", "glass", "cashmere")
MEASURE = re.compile(
    r"\d+(?:[.,]\d+)?(?:\s*[x\u00d7]\s*\d+(?:[.,]\d+)?)?\s*(?:g/m²|°C|cm|mm|ml|kg|g|%|oz|in)\b|"
    r"\d+(?:[.,]\d+)?\s*(?:°C|g/m²)",
)
WORD = re.compile(r"[a-z]+")


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html or "").split())


def _materials(text: str) -> list[str]:
    import django

    django.setup()
    from catalog.checks import materials_in

    return materials_in(text)


def _labels(product: dict, language: str) -> tuple[list[str], list[str]]:
    body = _text(product["body_html"])
    own = f"{product['title']} {body} {product.get('tags', '')}"
    measures = sorted({m.group(0).strip() for m in MEASURE.finditer(body)})
    if language != "en":
        return measures, []
    materials = _materials(own)
    words = set(WORD.findall(own.lower()))
    invented = [m for m in INVENTED if m not in materials and m not in words]
    return measures + materials, invented


def _item(prefix: str, product: dict, language: str, notes: str) -> dict:
    must, must_not = _labels(product, language)
    return {
        "id": f"{language}-{prefix}-{product['handle']}"[:100],
        "language": language,
        "title": product["title"],
        "body_html": product["body_html"] or "",
        "vendor": product.get("vendor") or "",
        "product_type": product.get("product_type") or "",
        "tags": product.get("tags") or "",
        "options": product.get("options") or [],
        "variants": product["variants"],
        "must_contain": must,
        "must_not_contain": must_not,
        "notes": notes,
    }


def _demo() -> list[dict]:
    products = json.loads(DEMO.read_text(encoding="utf-8"))["products"]
    return [
        {
            **p,
            "options": [{"name": name, "values": []} for name in p.get("options") or []],
            "variants": [
                {"title": v.get("option1") or "Default", "price": v["price"]} for v in p["variants"]
            ],
        }
        for p in products
    ]


def _samples(path: Path) -> list[dict]:
    products: dict[str, dict] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            handle_ = row["Handle"]
            if handle_ not in products:
                products[handle_] = {
                    "handle": handle_,
                    "title": row["Title"],
                    "body_html": row["Body (HTML)"],
                    "vendor": row["Vendor"],
                    "product_type": row["Type"],
                    "tags": row["Tags"],
                    "options": [],
                    "variants": [],
                }
            if row["Variant Price"]:
                title = (
                    " / ".join(v for v in (row["Option1 Value"], row["Option2 Value"]) if v)
                    or "Default Title"
                )
                products[handle_]["variants"].append(
                    {"title": title, "price": row["Variant Price"]}
                )
    return list(products.values())


def main() -> None:
    import os
    import sys

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aios_site.settings")
    items = [
        _item("demo", product, language, "the demo store's product")
        for product in _demo()
        for language in DEMO_LANGUAGES
    ]
    for path in sorted(SAMPLES.glob("*.csv")):
        items += [
            _item(path.stem, product, "en", f"Shopify's sample catalog {path.name}")
            for product in _samples(path)
        ]
    OUT.write_text(
        "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items), encoding="utf-8"
    )
    print(f"{len(items)} products written to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
