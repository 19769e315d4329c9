"""Labelled eval sets, read and checked before anything is measured against them.

A wrong label is worse than a missing one: it makes a good agent look bad, or a bad one good.
So every line is validated on load (its intent is one the classifier knows, its product is
one the demo store sells) and a bad line is refused with its line number, to be fixed in the
file rather than skipped in silence.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

from catalog.simulator.products import DATA as CATALOG_DATA

DATA = Path(__file__).resolve().parent / "data"
INTENT_FILES = (
    Path(__file__).resolve().parents[1] / "llm" / "data" / "intent-examples.csv",
    Path(__file__).resolve().parents[1] / "llm" / "data" / "intent-examples-shop.csv",
)
STORE_FILE = CATALOG_DATA / "demo-store.json"
# The shop's languages that the sets speak (ISO 639-1).
LANGUAGES = frozenset({"en", "es", "fr", "de", "it", "pt", "nl", "pl", "ja", "tr"})
# Beyond the classifier's intents: questions about one product, and messages that are no
# request at all (prompt injections), which the classifier reports as "unknown".
EXTRA_INTENTS = frozenset({"product_question", "unknown"})
RISKS = ("low", "medium", "high")
ORDER = re.compile(r"#\d+")


class DatasetError(ValueError):
    """A line of an eval set that cannot be trusted; the message names the line."""


@dataclass(frozen=True)
class EvalItem:
    """One customer message and what a good handling of it looks like."""

    id: str
    language: str
    intent: str
    subject: str
    body: str
    order: str | None
    product: str | None
    must_contain: tuple[str, ...]
    must_not_contain: tuple[str, ...]
    risk: str
    auto_ok: bool
    notes: str


FIELDS = tuple(field.name for field in fields(EvalItem))


@cache
def intents() -> frozenset[str]:
    """The intent names the project's classifier is seeded with, plus EXTRA_INTENTS: read
    from the seed files so that the set and the classifier cannot drift apart."""
    names = set(EXTRA_INTENTS)
    for path in INTENT_FILES:
        with path.open(newline="", encoding="utf-8") as handle:
            names.update(row["intent"] for row in csv.DictReader(handle))
    return frozenset(names)


@cache
def store_products() -> dict[str, dict[str, Any]]:
    """The demo store's products by handle (catalog/data/demo-store.json)."""
    data = json.loads(STORE_FILE.read_text(encoding="utf-8"))
    return {product["handle"]: product for product in data["products"]}


def load(name: str = "support-messages") -> list[EvalItem]:
    """A shipped set, agents/evals/data/<name>.jsonl."""
    return read(DATA / f"{name}.jsonl")


def read(path: Path, parse=None) -> list[Any]:
    """Every line of a JSONL file as an item (an EvalItem, unless `parse` makes another);
    DatasetError at the first bad line."""
    parse = parse or _item
    items: list[Any] = []
    seen: set[str] = set()
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            item = parse(line, number)
            if item.id in seen:
                raise DatasetError(f"line {number}: id {item.id!r} is used twice")
            seen.add(item.id)
            items.append(item)
    return items


def counts(items: list[EvalItem]) -> dict[str, Counter[str]]:
    """How many items per language and per intent: what a README or a report shows."""
    return {
        "language": Counter(item.language for item in items),
        "intent": Counter(item.intent for item in items),
    }


def _row(line: str, number: int):
    """A line's JSON object, and the error maker that names the line."""

    def fail(problem: str) -> DatasetError:
        return DatasetError(f"line {number}: {problem}")

    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise fail(f"not JSON ({error.msg})") from None
    if not isinstance(row, dict):
        raise fail("not a JSON object")
    return row, fail


def _item(line: str, number: int) -> EvalItem:
    row, fail = _row(line, number)
    missing = [name for name in FIELDS if name not in row]
    if missing:
        raise fail(f"missing field(s) {', '.join(missing)}")
    extra = sorted(set(row) - set(FIELDS))
    if extra:
        raise fail(f"unknown field(s) {', '.join(extra)}")
    for name in ("id", "subject", "body", "notes"):
        if not isinstance(row[name], str) or (name != "notes" and not row[name].strip()):
            raise fail(f"{name} must be a non-empty string")
    if row["language"] not in LANGUAGES:
        raise fail(f"unknown language {row['language']!r}")
    if row["intent"] not in intents():
        raise fail(f"unknown intent {row['intent']!r}")
    if row["order"] is not None and not (
        isinstance(row["order"], str) and ORDER.fullmatch(row["order"])
    ):
        raise fail(f"order must be like '#1016' or null, not {row['order']!r}")
    if row["product"] is not None and row["product"] not in store_products():
        raise fail(f"product {row['product']!r} is not in the demo store")
    for name in ("must_contain", "must_not_contain"):
        value = row[name]
        if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
            raise fail(f"{name} must be a list of non-empty strings")
    if row["risk"] not in RISKS:
        raise fail(f"risk must be one of {', '.join(RISKS)}, not {row['risk']!r}")
    if not isinstance(row["auto_ok"], bool):
        raise fail("auto_ok must be true or false")
    return EvalItem(
        **{
            **row,
            "must_contain": tuple(row["must_contain"]),
            "must_not_contain": tuple(row["must_not_contain"]),
        }
    )


# -- products: what a description writer is measured on ------------------------------------

PRODUCT_SETS = frozenset({"product-descriptions"})


@dataclass(frozen=True)
class ProductItem:
    """One product, the language to describe it in, and what a good description says."""

    id: str
    language: str
    title: str
    body_html: str
    vendor: str
    product_type: str
    tags: str
    options: tuple[dict[str, Any], ...]
    variants: tuple[dict[str, str], ...]
    must_contain: tuple[str, ...]
    must_not_contain: tuple[str, ...]
    notes: str


PRODUCT_FIELDS = tuple(field.name for field in fields(ProductItem))


BRIEF_SETS = frozenset({"content-briefs"})


def kind_of(name: str) -> str:
    """What a dataset's items are: customer messages, products or content briefs."""
    if name in PRODUCT_SETS:
        return "products"
    return "briefs" if name in BRIEF_SETS else "messages"


def load_products(name: str = "product-descriptions") -> list[ProductItem]:
    """A shipped set of products, checked line by line like the messages."""
    return read(DATA / f"{name}.jsonl", _product_item)


def _product_item(line: str, number: int) -> ProductItem:
    row, fail = _row(line, number)
    if sorted(row) != sorted(PRODUCT_FIELDS):
        raise fail(f"a product is an object with exactly the fields {', '.join(PRODUCT_FIELDS)}")
    if not isinstance(row["title"], str) or not row["title"].strip():
        raise fail("title must be a non-empty string")
    if row["language"] not in LANGUAGES:
        raise fail(f"unknown language {row['language']!r}")
    variants = row["variants"]
    if not isinstance(variants, list) or not all(
        isinstance(v, dict) and ORDER_PRICE.fullmatch(str(v.get("price", ""))) for v in variants
    ):
        raise fail("variants must be a list of {title, price} with prices like 59.00")
    for name in ("must_contain", "must_not_contain"):
        value = row[name]
        if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
            raise fail(f"{name} must be a list of non-empty strings")
    return ProductItem(
        **{
            **row,
            "options": tuple(row["options"]),
            "variants": tuple(row["variants"]),
            "must_contain": tuple(row["must_contain"]),
            "must_not_contain": tuple(row["must_not_contain"]),
        }
    )


ORDER_PRICE = re.compile(r"\d+(?:\.\d{1,2})?")


# -- content briefs: what the content writer is measured on ------------------------------------

CHANNELS = frozenset({"blog", "newsletter", "social"})


@dataclass(frozen=True)
class BriefItem:
    """One brief, and what good posts for it say and must not say (the shop's products the
    brief is not about)."""

    id: str
    language: str
    topic: str
    audience: str
    channels: tuple[str, ...]
    languages: tuple[str, ...]
    must_contain: tuple[str, ...]
    must_not_contain: tuple[str, ...]
    notes: str


BRIEF_FIELDS = tuple(field.name for field in fields(BriefItem))


def load_briefs(name: str = "content-briefs") -> list[BriefItem]:
    """A shipped set of briefs, checked line by line like the messages."""
    return read(DATA / f"{name}.jsonl", _brief_item)


def _brief_item(line: str, number: int) -> BriefItem:
    row, fail = _row(line, number)
    if sorted(row) != sorted(BRIEF_FIELDS):
        raise fail(f"a brief is an object with exactly the fields {', '.join(BRIEF_FIELDS)}")
    if not isinstance(row["topic"], str) or not row["topic"].strip():
        raise fail("topic must be a non-empty string")
    if not row["channels"] or not set(row["channels"]) <= CHANNELS:
        raise fail(f"channels must be some of {', '.join(sorted(CHANNELS))}")
    if not row["languages"] or not set(row["languages"]) <= LANGUAGES:
        raise fail("languages must be some of the shop's languages")
    if row["language"] != row["languages"][0]:
        raise fail("language must be the brief's first language")
    for name in ("must_contain", "must_not_contain"):
        value = row[name]
        if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
            raise fail(f"{name} must be a list of non-empty strings")
    return BriefItem(**{**row, **{k: tuple(row[k]) for k in BRIEF_FIELDS[4:8]}})
