"""Filters that show values as an owner reads them (aios_site/humanize.py)."""

from __future__ import annotations

from typing import Any

from babel.numbers import get_currency_symbol
from django import template

from aios_site import humanize
from approvals.edits import local_input as _local_input

register = template.Library()


@register.filter
def money(amount: Any, currency: str = "") -> str:
    """{{ price|money:"EUR" }} → "€18.00" (in English), "18,00 €" (in German)."""
    return humanize.money(amount, currency)


@register.filter
def spend(amount: Any) -> str:
    """Model spend in dollars: "$0.0123"."""
    return humanize.spend(amount)


@register.filter
def currency_label(code: str) -> str:
    """The sign beside a money input: "€", "$", "CHF"."""
    return get_currency_symbol(code.upper(), locale=humanize.locale_name()) if code else ""


# Code words an owner may meet, in their words; others lose their underscores.
WORDS = {
    "sold_out": "Sold out",
    "low_stock": "Running low",
    "none": "not yet",
    "drafting": "being written",
    "sent": "sent",
    "waiting": "waiting for you",
}


@register.filter
def words(code: str) -> str:
    """ "Sold out" for `sold_out`, "Track order" for `track_order`."""
    if not code:
        return ""
    return WORDS.get(code) or code.replace("_", " ").capitalize()


@register.filter
def language_name(code: str) -> str:
    return humanize.language_name(code)


@register.filter
def local_input(value: str | None) -> str:
    """An ISO time as a `datetime-local` input's value, on the member's clock."""
    return _local_input(value)
