"""The catalog's effectors: what agents may propose to change in a shop.

Product writes go through the Admin API connector (catalog/connector.py) with the proposal's
idempotency key; a reply goes to the store's outbound URL, signed, or by email. After a
write the local catalog is brought up to date at once, without waiting for the shop's
`products/update` webhook (which, arriving later, changes nothing more).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage

from aios_site.chaos import attempt_key
from aios_site.core.errors import PermanentError
from aios_site.humanize import language_list, language_name, money
from approvals.edits import Edit
from approvals.effectors import (
    Effector,
    Found,
    confirm_delivery,
    confirm_handover,
    deliver,
    register,
    require_field,
    send_once,
    signed_post,
)
from catalog import html
from catalog.checks import failed
from catalog.drafts import ESCALATING, check_rows, failed_drafts, reply_risk
from catalog.models import Message, Product, Variant
from catalog.services import DEMO_SHOP
from catalog.tools import found

PRODUCT_STATUSES = ("active", "draft", "archived")
MAX_DESCRIPTION = 20_000
MAX_REPLY = 10_000


def _product(workspace, payload: dict[str, Any]) -> Product:
    product_id = require_field(payload, "product_id", int)
    products = Product.objects.filter(
        workspace=workspace, external_id=product_id, deleted_at__isnull=True
    )
    return found(products.select_related("connection"), "product", product_id)


def _variant(workspace, payload: dict[str, Any]) -> Variant:
    variant_id = require_field(payload, "variant_id", int)
    variants = Variant.objects.filter(product__workspace=workspace, external_id=variant_id)
    return found(variants.select_related("product__connection"), "variant", variant_id)


def _before(proposal, field: str, default: Any = None) -> Any:
    """The field as it was before the proposal's first attempt wrote anything (recorded by
    the commit protocol before that attempt), else `default`: never the value re-read
    after an attempt that may have changed it already."""
    image = getattr(proposal, "before_image", None) or {}
    return image.get(field, default)


def _connector(connection):
    from catalog.connector import ShopifyConnector

    if connection.uninstalled_at:
        raise PermanentError(
            f"{connection.shop_domain} uninstalled the app: nothing more goes to it"
        )
    return ShopifyConnector(connection)


@register
class UpdateDescription(Effector):
    """A product's description in one or more shop languages: the primary language is the
    product's `body_html`, the others the metafields `aios.description_<lang>`. The HTML is
    sanitized before it leaves (catalog/html.py)."""

    name = "catalog.update_description"
    label = "Product description"
    replaces_minutes = 15.0

    def headline(self, payload, *, name, facts) -> str:
        languages = sorted((payload.get("descriptions") or {}).keys())
        written = f" in {language_list(languages)}" if languages else ""
        return f"New description for {name or 'a product'}{written}"

    def validate(self, payload, *, workspace) -> None:
        _product(workspace, payload)
        descriptions = payload.get("descriptions")
        if not isinstance(descriptions, dict) or not descriptions:
            raise PermanentError("the payload needs `descriptions`: {language: html}")
        for language, text in descriptions.items():
            if not isinstance(text, str) or not html.visible_text(text):
                raise PermanentError(f"the {language} description is empty")
            if len(text) > MAX_DESCRIPTION:
                raise PermanentError(
                    f"the {language} description is over {MAX_DESCRIPTION} characters"
                )

    def risk(self, payload) -> str:
        return "high" if failed(payload.get("checks") or []) else "medium"

    def facts(self, payload, *, workspace) -> dict[str, Any]:
        return {
            "product_id": payload["product_id"],
            "languages": sorted(payload["descriptions"]),
            "checks_failed": len(failed(payload.get("checks") or [])),
            "failed_drafts": len(failed_drafts(payload)),
        }

    def edits(self, payload, *, workspace, facts=None) -> list[Edit]:
        return [
            Edit(
                ("descriptions", language),
                "html",
                f"Description in {language_name(language)}",
                text,
            )
            for language, text in sorted((payload.get("descriptions") or {}).items())
        ]

    def preview(self, payload, *, workspace) -> list[dict[str, Any]]:
        product = _product(workspace, payload)
        changes = [
            {
                "field": f"Description in {language_name(language)}",
                "before": html.visible_text(_current(product, language)) or None,
                "after": html.visible_text(html.sanitize(text)),
            }
            for language, text in sorted(payload["descriptions"].items())
        ]
        return changes + check_rows(payload)

    def before_image(self, payload, *, workspace) -> dict[str, Any]:
        product = _product(workspace, payload)
        return {"descriptions": {lang: _current(product, lang) for lang in payload["descriptions"]}}

    def commit(self, payload, idempotency_key, *, workspace, proposal) -> dict[str, Any]:
        product = _product(workspace, payload)
        clean = {lang: html.sanitize(text) for lang, text in payload["descriptions"].items()}
        before = _before(proposal, "descriptions") or {
            lang: _current(product, lang) for lang in clean
        }
        _connector(product.connection).product_update(
            product.external_id,
            _description_fields(product, clean),
            idempotency_key=idempotency_key,
        )
        return _described(product, clean, before)

    def confirm(self, proposal, *, workspace) -> Found:
        product = _product(workspace, proposal.payload)
        clean = {lang: html.sanitize(t) for lang, t in proposal.payload["descriptions"].items()}
        before = _before(proposal, "descriptions") or {}
        shop = _connector(product.connection).product_get(product.external_id)
        fields = [
            (_shop_description(shop, product, lang), text, before.get(lang, ""))
            for lang, text in clean.items()
        ]
        found = _read_back([tuple(map(_visible, field)) for field in fields])
        return Found(found, _described(product, clean, before) if found else None)

    def undo(self, result, *, workspace, proposal) -> dict[str, Any]:
        product = _product(workspace, {"product_id": result["product_id"]})
        before = dict(_before(proposal, "descriptions") or result["before"])
        _connector(product.connection).product_update(
            product.external_id,
            _description_fields(product, before),
            idempotency_key=f"{proposal.idempotency_key}-undo",
        )
        _store_descriptions(product, before)
        return {"restored": sorted(before)}


def _current(product: Product, language: str) -> str:
    if language == product.connection.primary_language:
        return product.body_html
    return (product.descriptions or {}).get(language, "")


def _description_fields(product: Product, descriptions: dict[str, str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    primary = product.connection.primary_language
    if primary in descriptions:
        fields["body_html"] = descriptions[primary]
    others = sorted(lang for lang in descriptions if lang != primary)
    if others:
        fields["metafields"] = [
            {
                "namespace": "aios",
                "key": f"description_{lang}",
                "type": "multi_line_text_field",
                "value": descriptions[lang],
            }
            for lang in others
        ]
    return fields


def _described(product: Product, clean: dict[str, str], before: dict[str, str]) -> dict[str, Any]:
    _store_descriptions(product, clean)
    return {"product_id": product.external_id, "languages": sorted(clean), "before": before}


def _shop_description(shop: dict[str, Any], product: Product, language: str) -> str | None:
    """The description the shop holds in `language`; None when its answer does not say."""
    if language == product.connection.primary_language:
        return shop.get("body_html")
    if "metafields" not in shop:
        return None
    key = f"description_{language}"
    return next(
        (
            m.get("value", "")
            for m in shop["metafields"]
            if (m.get("namespace"), m.get("key")) == ("aios", key)
        ),
        "",
    )


def _visible(text: str | None) -> str | None:
    return None if text is None else html.visible_text(text)


def _read_back(fields: list[tuple[Any, Any, Any]]) -> bool | None:
    """Each field as (what the shop holds now, what the proposal wanted, what was there
    before): True when every field holds the wanted value, False when every one still holds
    the value before, None when the shop holds something else or does not say."""
    if any(now is None for now, _, _ in fields):
        return None
    if all(now == wanted for now, wanted, _ in fields):
        return True
    if all(now == before for now, _, before in fields):
        return False
    return None


def _store_descriptions(product: Product, descriptions: dict[str, str]) -> None:
    product.descriptions = {**(product.descriptions or {}), **descriptions}
    primary = product.connection.primary_language
    if primary in descriptions:
        product.body_html = descriptions[primary]
    product.save(update_fields=["descriptions", "body_html"])


def _price(payload: dict[str, Any]) -> Decimal:
    try:
        price = Decimal(str(payload.get("price")))
    except InvalidOperation as error:
        raise PermanentError("the payload needs `price`, a number") from error
    if not price.is_finite() or price < 0 or price > Decimal("1000000"):
        raise PermanentError("a price is a number from 0 to 1 000 000")
    return price.quantize(Decimal("0.01"))


@register
class ChangePrice(Effector):
    """A variant's price. Facts for the policy: `price`, `old_price`, `cost` (when known) and
    `price_change_pct` (the size of the change, up or down)."""

    name = "catalog.change_price"
    label = "Price change"
    replaces_minutes = 5.0

    def headline(self, payload, *, name, facts) -> str:
        currency = facts.get("currency", "")
        new = money(payload.get("price"), currency)
        if facts.get("old_price") is None:
            return f"Set the price of {name or 'a product'} to {new}"
        old = money(facts["old_price"], currency)
        return f"Change the price of {name or 'a product'} from {old} to {new}"

    def validate(self, payload, *, workspace) -> None:
        _variant(workspace, payload)
        _price(payload)

    def risk(self, payload) -> str:
        return "high"

    def facts(self, payload, *, workspace) -> dict[str, Any]:
        variant, price = _variant(workspace, payload), _price(payload)
        facts: dict[str, Any] = {
            "price": float(price),
            "variant_id": variant.external_id,
            "currency": variant.product.connection.currency,
        }
        if variant.cost is not None:
            facts["cost"] = float(variant.cost)
        if variant.price:
            facts["old_price"] = float(variant.price)
            facts["price_change_pct"] = round(
                abs(float((price - variant.price) / variant.price * 100)), 2
            )
        return facts

    def edits(self, payload, *, workspace, facts=None) -> list[Edit]:
        currency = (facts or {}).get("currency", "")
        return [Edit(("price",), "money", "Price", str(_price(payload)), currency=currency)]

    def preview(self, payload, *, workspace) -> list[dict[str, Any]]:
        variant, price = _variant(workspace, payload), _price(payload)
        change = ""
        if variant.price:
            change = f" ({(price - variant.price) / variant.price * 100:+.1f}%)"
        currency = variant.product.connection.currency
        return [
            {
                "field": f"Price of {variant.product.title} / {variant.title}{change}",
                "before": money(variant.price, currency) if variant.price is not None else None,
                "after": money(price, currency),
            }
        ]

    def before_image(self, payload, *, workspace) -> dict[str, Any]:
        price = _variant(workspace, payload).price
        return {"price": None if price is None else str(price)}

    def commit(self, payload, idempotency_key, *, workspace, proposal) -> dict[str, Any]:
        variant, price = _variant(workspace, payload), _price(payload)
        old = _before(proposal, "price", variant.price)
        _connector(variant.product.connection).variant_update(
            variant.external_id, {"price": str(price)}, idempotency_key=idempotency_key
        )
        return _priced(variant, price, old)

    def confirm(self, proposal, *, workspace) -> Found:
        variant, price = _variant(workspace, proposal.payload), _price(proposal.payload)
        old = _before(proposal, "price")
        shop = _connector(variant.product.connection).product_get(variant.product.external_id)
        now = next(
            (
                v.get("price")
                for v in shop.get("variants") or []
                if v.get("id") == variant.external_id
            ),
            None,
        )
        found = _read_back([tuple(_money(value) for value in (now, price, old))])
        return Found(found, _priced(variant, price, old) if found else None)

    def undo(self, result, *, workspace, proposal) -> dict[str, Any]:
        variant = _variant(workspace, {"variant_id": result["variant_id"]})
        old_price = _before(proposal, "price", result["old_price"])
        if old_price is None:
            raise PermanentError("the variant had no price before: there is nothing to restore")
        _connector(variant.product.connection).variant_update(
            variant.external_id,
            {"price": old_price},
            idempotency_key=f"{proposal.idempotency_key}-undo",
        )
        Variant.objects.filter(pk=variant.pk).update(price=Decimal(old_price))
        return {"price": old_price}


def _priced(variant: Variant, price: Decimal, old: Any) -> dict[str, Any]:
    Variant.objects.filter(pk=variant.pk).update(price=price)
    return {"variant_id": variant.external_id, "price": str(price), "old_price": str(old)}


def _money(value: Any) -> Decimal | None:
    try:
        return None if value is None else Decimal(str(value))
    except InvalidOperation:
        return None


@register
class SetProductStatus(Effector):
    """Shows (`active`) or hides (`draft`, `archived`) a product in the shop."""

    name = "catalog.set_product_status"
    label = "Show or hide a product"
    replaces_minutes = 3.0

    def headline(self, payload, *, name, facts) -> str:
        product = name or "a product"
        return {
            "active": f"Show {product} in the shop",
            "draft": f"Hide {product} from the shop",
            "archived": f"Archive {product}",
        }.get(payload.get("status"), f"Change whether {product} shows in the shop")

    def validate(self, payload, *, workspace) -> None:
        _product(workspace, payload)
        if payload.get("status") not in PRODUCT_STATUSES:
            raise PermanentError(f"status must be one of {', '.join(PRODUCT_STATUSES)}")

    def risk(self, payload) -> str:
        return "medium"

    def preview(self, payload, *, workspace) -> list[dict[str, Any]]:
        product = _product(workspace, payload)
        return [
            {
                "field": f"status of {product.title}",
                "before": product.status or None,
                "after": payload["status"],
            }
        ]

    def before_image(self, payload, *, workspace) -> dict[str, Any]:
        return {"status": _product(workspace, payload).status}

    def commit(self, payload, idempotency_key, *, workspace, proposal) -> dict[str, Any]:
        product = _product(workspace, payload)
        old = _before(proposal, "status", product.status)
        _connector(product.connection).product_update(
            product.external_id, {"status": payload["status"]}, idempotency_key=idempotency_key
        )
        return _set_status(product, payload["status"], old)

    def confirm(self, proposal, *, workspace) -> Found:
        product, wanted = _product(workspace, proposal.payload), proposal.payload["status"]
        old = _before(proposal, "status")
        shop = _connector(product.connection).product_get(product.external_id)
        found = _read_back([(shop.get("status"), wanted, old)])
        return Found(found, _set_status(product, wanted, old) if found else None)

    def undo(self, result, *, workspace, proposal) -> dict[str, Any]:
        product = _product(workspace, {"product_id": result["product_id"]})
        old_status = _before(proposal, "status", result["old_status"])
        _connector(product.connection).product_update(
            product.external_id,
            {"status": old_status},
            idempotency_key=f"{proposal.idempotency_key}-undo",
        )
        Product.objects.filter(pk=product.pk).update(status=old_status)
        return {"status": old_status}


def _set_status(product: Product, status: str, old: Any) -> dict[str, Any]:
    Product.objects.filter(pk=product.pk).update(status=status)
    return {"product_id": product.external_id, "status": status, "old_status": old}


@register
class SendReply(Effector):
    """A reply to a customer's message: POSTed, signed with the store's webhook secret, to the
    store's outbound URL (a helpdesk), or else sent by email. Facts for the policy: `intent`,
    `tier` (template, local, remote) and `language`."""

    name = "catalog.send_reply"
    label = "Reply to a customer"
    replaces_minutes = 6.0

    def headline(self, payload, *, name, facts) -> str:
        return f"Reply to {name or 'a customer'}"

    def validate(self, payload, *, workspace) -> None:
        _message(workspace, payload)
        body = require_field(payload, "body", str)
        if len(body) > MAX_REPLY:
            raise PermanentError(f"a reply holds at most {MAX_REPLY} characters")
        subject = payload.get("subject")
        if subject is not None and (not isinstance(subject, str) or set(subject) & {"\r", "\n"}):
            # A line break in a mail subject starts a new header (Bcc: …).
            raise PermanentError("a reply's subject is one line of text")

    def risk(self, payload) -> str:
        return "low" if payload.get("tier") == "template" else "medium"

    def facts(self, payload, *, workspace) -> dict[str, Any]:
        """The payload's intent, tier, language and confidence, its checks, and the risk read
        from the customer's own words: a threat, a refund demand, money or an attempt to
        instruct the agent make it high, a complaint medium, whatever the tier."""
        message = _message(workspace, payload)
        return self._facts(payload, customer_wrote=f"{message.subject}\n{message.body}")

    def eval_facts(self, payload, *, workspace, context) -> dict[str, Any]:
        """An eval's message is its item's, not a message in the shop."""
        return self._facts(
            payload, customer_wrote=f"{context.get('subject', '')}\n{context.get('body', '')}"
        )

    def _facts(self, payload, *, customer_wrote: str) -> dict[str, Any]:
        found = failed(payload.get("checks") or [])
        level, reasons = reply_risk(
            message=customer_wrote,
            intent=str(payload.get("intent") or ""),
            draft_failed=bool(found),
        )
        risk = max(self.risk(payload), level, key=ESCALATING.__getitem__)
        keys = ("intent", "intent_by", "tier", "language", "confidence")
        return {
            **{key: payload[key] for key in keys if key in payload},
            "failed_drafts": len(failed_drafts(payload)),
            "checks_failed": len(found),
            "risk": risk,
            "risk_reasons": reasons,
        }

    def edits(self, payload, *, workspace, facts=None) -> list[Edit]:
        return [
            # Blank: "Re: " and the customer's own subject (see _subject).
            Edit(
                ("subject",), "line", "Subject (blank: Re: their subject)", payload.get("subject")
            ),
            Edit(("body",), "text", "Reply", payload.get("body")),
        ]

    def preview(self, payload, *, workspace) -> list[dict[str, Any]]:
        """The customer's message beside the reply, so the reply can be judged on the card;
        then what failed its checks, and the drafts thrown away for it."""
        message = _message(workspace, payload)
        rows = [
            {
                "field": f"{message.customer_name or message.customer_email} wrote",
                "before": None,
                "after": message.body,
                "context": True,  # what the reply answers, not a change
            },
            {
                "field": f"Reply to {message.customer_email}",
                "before": None,
                "after": payload["body"],
            },
        ]
        return rows + check_rows(payload)

    def commit(self, payload, idempotency_key, *, workspace, proposal) -> dict[str, Any]:
        message = _message(workspace, payload)
        if message.connection.outbound_url:
            send = _reply_post(message, payload, idempotency_key)
            return deliver(proposal, f"{proposal.idempotency_key}:http", send)
        return send_once(
            proposal, f"{proposal.idempotency_key}:email", _reply_mail(message, payload, proposal)
        )

    def confirm(self, proposal, *, workspace) -> Found:
        message = _message(workspace, proposal.payload)
        if message.connection.outbound_url:
            send = _reply_post(message, proposal.payload, attempt_key(proposal.idempotency_key))
            return confirm_delivery(proposal, f"{proposal.idempotency_key}:http", send)
        return confirm_handover(proposal, f"{proposal.idempotency_key}:email")


def _subject(message: Message, payload: dict[str, Any]) -> str:
    return payload.get("subject") or f"Re: {message.subject or 'your message'}"


def _reply_post(message: Message, payload: dict[str, Any], idempotency_key: str):
    """POSTs the reply, signed with the store's webhook secret, to its outbound URL."""
    connection = message.connection
    reply = {
        "message_id": message.pk,
        "external_id": message.external_id,
        "to": message.customer_email,
        "subject": _subject(message, payload),
        "body": payload["body"],
        "language": payload.get("language", ""),
        "shop": connection.shop_domain,
    }

    def send() -> dict[str, Any]:
        status = signed_post(
            connection.outbound_url,
            reply,
            secret=connection.webhook_secrets[0],
            headers={"Idempotency-Key": idempotency_key},
            allow_private=True if connection.shop_domain == DEMO_SHOP else None,
        )
        return {"via": "http", "status": status, "message_id": message.pk}

    return send


def _reply_mail(message: Message, payload: dict[str, Any], proposal):
    email = EmailMessage(
        subject=_subject(message, payload),
        body=payload["body"],
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.customer_email],
        # Stable across attempts: a receiver that sees it twice knows it for one mail.
        headers={"Message-ID": f"<{proposal.idempotency_key}@aios>"},
    )

    def send() -> dict[str, Any]:
        email.send()
        return {"via": "email", "message_id": message.pk}

    return send


def _message(workspace, payload: dict[str, Any]) -> Message:
    message_id = require_field(payload, "message_id", int)
    messages = Message.objects.filter(workspace=workspace, pk=message_id)
    return found(messages.select_related("connection"), "message", message_id)
