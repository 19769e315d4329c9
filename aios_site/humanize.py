"""Values as an owner reads them, in the member's own language: money with its currency,
language names, numbers. Babel holds the CLDR data for every locale, so "18,00 €" in German
and "€18.00" in English come from the same call; Django's localization does dates (its
`SHORT_DATETIME_FORMAT` per language) and time zones (accounts/middleware.py)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.lists import format_list
from babel.numbers import format_currency, format_decimal
from django.utils import translation


def locale_name() -> str:
    return translation.to_locale(translation.get_language() or "en")


def money(amount: Any, currency: str = "") -> str:
    """`amount` in `currency` as the member's locale writes it; a bare number when the
    currency is not known; "" for no amount."""
    if amount in (None, ""):
        return ""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    if not currency:
        return format_decimal(value, format="#,##0.00", locale=locale_name())
    return format_currency(value, currency.upper(), locale=locale_name())


def spend(amount: Any) -> str:
    """Model spend, which the ledger keeps in US dollars to the ten-thousandth: "$0.0123";
    "less than $0.0001" rather than a row of zeros."""
    try:
        value = Decimal(str(amount or 0))
    except InvalidOperation:
        return str(amount)
    if 0 < value < Decimal("0.0001"):
        return f"less than {spend(Decimal('0.0001'))}"
    return format_currency(
        value, "USD", format="¤#,##0.00##", currency_digits=False, locale=locale_name()
    )


def writer_words(tier: str | None, model: str | None, *, fallback: bool = False) -> str:
    """What wrote a draft, as an owner says it: never a tier's or a template's code name."""
    if tier == "template":
        said = "a template filled in from your shop's data"
        return said + (" (no writing model was available: see Models)" if fallback else "")
    said = f"the model on this machine ({model})" if tier == "local" else (model or "a model")
    return said + (", standing in for the usual one" if fallback else "")


def language_name(code: str) -> str:
    """ "Spanish" for `es` (in the member's language: "Spanisch" for a German member)."""
    try:
        name = Locale.parse(code.replace("-", "_")).get_display_name(locale_name())
    except (UnknownLocaleError, ValueError, TypeError):
        return code
    return name[:1].upper() + name[1:] if name else code


def language_list(codes: list[str]) -> str:
    """ "English and Spanish", in the member's language."""
    names = [language_name(code) for code in codes]
    return format_list(names, locale=locale_name()) if names else ""


# The currencies a shop is offered when it is connected (Shopify's most used first).
COMMON_CURRENCIES = (
    "USD",
    "EUR",
    "GBP",
    "CAD",
    "AUD",
    "CHF",
    "SEK",
    "NOK",
    "DKK",
    "PLN",
    "CZK",
    "JPY",
    "CNY",
    "KRW",
    "INR",
    "BRL",
    "MXN",
    "TRY",
    "NZD",
    "ZAR",
)


def currency_choices() -> list[tuple[str, str]]:
    """(code, "Euro (EUR)") in the member's language."""
    names = Locale.parse(locale_name()).currencies
    return [(code, f"{names.get(code, code)} ({code})") for code in COMMON_CURRENCIES]
