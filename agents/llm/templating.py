"""The template tier: deterministic, localized text from Django templates and gettext catalogs.

It writes the replies a shop sends most often and attribute-based product descriptions, and
is what the gateway falls back to when no remote model is configured. The same name, context
and language always give byte-identical text: no model, no clock, no randomness.

Context values come from webhooks and customers, so they are data: Django inserts a variable's
value as text and never evaluates `{{ }}` or `{% %}` inside it. Autoescaping is off because
the result is plain text, not HTML; it is escaped wherever it is later shown in a page.

Templates and their context fields (all optional unless marked *required*):

Every `reply.*` template
    shop_name (*required*), customer_name (greets by name), order_name (as the shop shows
    it, e.g. "#1001"). They end with an offer to help and the shop's sign-off.
`reply.order_status`
    status: one of ORDER_STATUSES (anything else: "we are checking"); carrier;
    tracking_number; tracking_url; estimated_delivery (a date, or an ISO "YYYY-MM-DD" string;
    other text is shown as given).
`reply.shipping`
    delivery_days_min, delivery_days_max (business days); free_shipping_over (an amount)
    with currency; shipping_policy_url; tracking_url.
`reply.refund`
    refund_status: "received" (default) or "issued"; refund_amount with currency;
    refund_days (business days for the bank); return_policy_url.
`reply.returns`
    return_days (*required*: days after delivery to send items back); refund_days (business
    days to refund once the parcel is back); return_policy_url.
`reply.cancel_order`
    cancel_status: "requested" (default), "cancelled" or "shipped" (too late to cancel);
    return_policy_url.
`reply.payment_issue`
    payment_url (where to pay again); payment_methods (a list, e.g. ["Visa", "PayPal"]).
`reply.acknowledge`
    response_hours (when a person will answer). The handoff: "we got your message, a person
    will answer".
`description.attributes`
    title (*required*); vendor; product_type; options: [{"name": "Colour", "values": [...]}]
    (colour and size options, named in any of LANGUAGES, are counted: "Available in 3
    colours: …"); tags (a list or a comma-separated string); price_min, price_max with
    currency; attributes: {"material": "Linen", …} (known keys get translated labels).
Every `content.*` template (a brief's skeleton, for a person to finish, when no model is set)
    shop_name (*required*), topic (*required*), audience, points (a list of facts, one line
    each). `content.outline`: the angle and three headings; `content.blog` and
    `content.newsletter`: the title (subject) on the first line, then the body;
    `content.social`: one line; `content.ideas`: five angles, one per line.

Amounts are numbers (int, Decimal or a numeric string) and are formatted for the language,
with the currency code after them; counts are whole numbers.

Catalogs: English is the source; locale/<lang>/LC_MESSAGES/django.po holds the others, with
the compiled .mo beside it in the tree (nothing compiles them at install). After changing a
message, from the project root (the dummy URLs only let settings load; nothing connects):

    DATABASE_URL=postgres://x@localhost/x REDIS_URL=redis://localhost:6379/0 \
    DJANGO_SETTINGS_MODULE=aios_site.settings.test django-admin makemessages \
      --no-obsolete --add-location file -l es -l fr -l de -l it -l pt \
      -i aios_site -i approvals -i bench -i catalog -i memory -i static -i tests \
      -i aios.egg-info -i manage.py -i templates/accounts -i templates/agents \
      -i templates/shell -i templates/base.html -i 'agents/[!l]*' -i 'agents/llm/[!t]*' \
      -i agents/llm/data
    for l in es fr de it pt; do msgfmt --check -o locale/$l/LC_MESSAGES/django.mo \
      locale/$l/LC_MESSAGES/django.po; done

tests/llm/test_templating.py fails while a catalog lacks a message or a .mo is stale.
"""

from __future__ import annotations

import datetime
import functools
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.template import Context, Engine
from django.utils import formats, translation
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy, pgettext

from agents.pipelines import PermanentError

LANGUAGES = ("en", "es", "fr", "de", "it", "pt")
FALLBACK_LANGUAGE = "en"

TEMPLATES: dict[str, str] = {
    "reply.order_status": "llm/reply/order_status.txt",
    "reply.shipping": "llm/reply/shipping.txt",
    "reply.refund": "llm/reply/refund.txt",
    "reply.returns": "llm/reply/returns.txt",
    "reply.cancel_order": "llm/reply/cancel_order.txt",
    "reply.payment_issue": "llm/reply/payment_issue.txt",
    "reply.acknowledge": "llm/reply/acknowledge.txt",
    "description.attributes": "llm/description/attributes.txt",
    "content.outline": "llm/content/outline.txt",
    "content.blog": "llm/content/blog.txt",
    "content.newsletter": "llm/content/newsletter.txt",
    "content.social": "llm/content/social.txt",
    "content.ideas": "llm/content/ideas.txt",
}

ORDER_STATUSES = ("processing", "partially_shipped", "shipped", "delivered", "cancelled")

MONEY_FIELDS = ("refund_amount", "free_shipping_over", "price_min", "price_max")
COUNT_FIELDS = (
    "delivery_days_min",
    "delivery_days_max",
    "refund_days",
    "return_days",
    "response_hours",
)

# Option names as merchants write them, in the languages we serve: these get a counted,
# translated sentence; any other option is listed under its own name.
OPTION_KINDS = {
    "colour": {"color", "colour", "colors", "colours", "farbe", "couleur", "colore", "cor"},
    "size": {"size", "sizes", "talla", "tamaño", "taille", "größe", "grösse", "taglia", "tamanho"},
}
ATTRIBUTE_LABELS = {
    "material": gettext_lazy("Material"),
    "care": gettext_lazy("Care"),
    "fit": gettext_lazy("Fit"),
    "origin": gettext_lazy("Origin"),
    "weight": gettext_lazy("Weight"),
    "dimensions": gettext_lazy("Dimensions"),
}


def has_template(name: str) -> bool:
    return name in TEMPLATES


def render(name: str, context: dict[str, Any], language: str) -> dict[str, str]:
    """The text of template `name` in `language` (or English, saying so, if we lack it)."""
    path = TEMPLATES.get(name)
    if path is None:
        raise PermanentError(f"no template named {name!r}; known: {', '.join(sorted(TEMPLATES))}")
    _require(name, context)
    used = supported_language(language)
    with translation.override(used):
        prepared = _prepare(context)
        text = _engine().get_template(path).render(Context(prepared, autoescape=False))
    result = {
        "content": _tidy(text),
        "language": used,
        "tier": "template",
        "template": name,
        "model": f"template:{name}",
    }
    if used != language:
        result["requested_language"] = language
    return result


def supported_language(language: str) -> str:
    """One of LANGUAGES: a regional variant ("pt-BR", "de_AT") gets its base language."""
    base = (language or "").replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else FALLBACK_LANGUAGE


def template_language(language: str, *, shop_languages: list[str] | tuple[str, ...] = ()) -> str:
    """The language a template can really be written in for `language`: itself (or its base
    language) when a catalog has it, else the first of the shop's languages that has one,
    else English. A caller compares it with what it asked for and says so when they differ:
    a template is never offered as a language it is not written in."""
    for candidate in (language, *shop_languages):
        base = (candidate or "").replace("_", "-").split("-")[0].lower()
        if base in LANGUAGES:
            return base
    return FALLBACK_LANGUAGE


@functools.cache
def _engine() -> Engine:
    # Our own engine, not the site's: no context processors, no HTML escaping.
    return Engine(
        dirs=[settings.BASE_DIR / "templates"],
        libraries={"i18n": "django.templatetags.i18n"},
        autoescape=False,
    )


# Besides the title of a description and the shop's name in a reply.
REQUIRED = {
    "reply.returns": ("return_days",),
    **{name: ("topic",) for name in TEMPLATES if name.startswith("content.")},
}


def _require(name: str, context: dict[str, Any]) -> None:
    first = "title" if name.startswith("description.") else "shop_name"
    for required in (first, *REQUIRED.get(name, ())):
        if not str(context.get(required) or "").strip():
            raise PermanentError(f"template {name!r} needs a non-empty {required!r}")


def _prepare(context: dict[str, Any]) -> dict[str, Any]:
    """A copy with amounts, dates, counts and lists turned into text for the active language."""
    prepared = dict(context)
    currency = str(context.get("currency") or "")
    for field in MONEY_FIELDS:
        if context.get(field) not in (None, ""):
            prepared[field] = _money(field, context[field], currency)
    for field in COUNT_FIELDS:
        if context.get(field) not in (None, ""):
            prepared[field] = _count(field, context[field])
    if isinstance(context.get("estimated_delivery"), str | datetime.date):
        prepared["estimated_delivery"] = _date(context["estimated_delivery"])
    if context.get("payment_methods"):
        prepared["payment_methods"] = join_list(context["payment_methods"])
    prepared["price_min"], prepared["price_max"] = _price_range(
        prepared.get("price_min"), prepared.get("price_max")
    )
    prepared["options"] = _options(context.get("options") or [])
    prepared["attributes"] = _attributes(context.get("attributes") or {})
    prepared["tags"] = _tags(context.get("tags") or [])
    return prepared


def join_list(items: list[Any] | str) -> str:
    """Items as a sentence would list them in the active language: "A, B and C"."""
    if isinstance(items, str):
        return items  # already one piece of text: its characters are not a list
    texts = [str(item) for item in items if str(item).strip()]
    if len(texts) < 2:
        return "".join(texts)
    return pgettext("list", "%(items)s and %(last)s") % {
        "items": ", ".join(texts[:-1]),
        "last": texts[-1],
    }


def _money(field: str, value: Any, currency: str) -> str:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite():
        raise PermanentError(f"{field} must be an amount, not {value!r}")
    number = formats.number_format(amount, decimal_pos=2, use_l10n=True, force_grouping=True)
    return f"{number} {currency}".strip()


def _price_range(low: str | None, high: str | None) -> tuple[str | None, str | None]:
    """(low, high) for a range; (price, None) when there is one price, however it was given."""
    if not low or low == high:
        return low or high, None
    return low, high


def _count(field: str, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PermanentError(f"{field} must be a whole number, not {value!r}") from None


def _date(value: str | datetime.date) -> str:
    if isinstance(value, str):
        try:
            value = datetime.date.fromisoformat(value)
        except ValueError:
            return value  # free text from the carrier, e.g. "next week": shown as given
    return formats.date_format(value, "DATE_FORMAT")


def _options(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    prepared = []
    for option in options:
        name = str(option.get("name") or "").strip()
        values = [str(value) for value in option.get("values") or [] if str(value).strip()]
        # Shopify gives a product without variants one option, "Title": "Default Title".
        if not values or values == ["Default Title"]:
            continue
        kind = next((k for k, names in OPTION_KINDS.items() if name.lower() in names), "other")
        prepared.append(
            {"kind": kind, "name": name, "count": len(values), "values": join_list(values)}
        )
    return prepared


def _attributes(attributes: dict[str, Any]) -> list[dict[str, str]]:
    prepared = []
    for key, value in attributes.items():
        text = join_list(value) if isinstance(value, list | tuple) else str(value or "")
        if not text.strip():
            continue
        label = ATTRIBUTE_LABELS.get(str(key).lower()) or capfirst(str(key).replace("_", " "))
        prepared.append({"label": str(label), "value": text})
    return prepared


def _tags(tags: list[str] | str) -> str:
    if isinstance(tags, str):
        tags = tags.split(",")
    return ", ".join(tag.strip() for tag in map(str, tags) if tag.strip())


def _tidy(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, none at either end."""
    lines = "\n".join(line.rstrip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", lines).strip()
