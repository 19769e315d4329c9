"""The three commerce pipelines: product descriptions, stock alerts and customer replies.

Each reads the shop through journaled tools (catalog/tools.py), asks models only through
`ctx.model`, and changes nothing itself: its last word is a proposal (`ctx.propose`) that a
person or the workspace's policy decides. Whatever a customer or a webhook wrote reaches a
model only as a data block (agents/llm/untrusted.py), and the agents' allow-lists hold only
the effector each pipeline needs, so an instruction hidden in a message can at most shape
the text of a reply that someone still approves.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from pydantic import Field

from agents.llm import prompts, untrusted
from agents.pipelines import (
    PermanentError,
    Pipeline,
    PipelineInput,
    finish,
    goto,
    register,
    required_outside_evals,
    step,
)
from aios_site.humanize import writer_words
from catalog import checks, drafts, html
from catalog import tools as _tools  # noqa: F401 - registers the catalog tools

DEFAULT_COVER_DAYS = 7.0
THIN_DESCRIPTION_WORDS = 40  # at least this many words: a description worth keeping


def _visible(content: str) -> str:
    return html.visible_text(html.from_text(content))


def _source(found: dict[str, Any]) -> str:
    return f"{found['namespace']}/{found['key']}@{found['version']}"


def _compact(found: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {"source": _source(item), "key": item["key"], "content": item["content"]} for item in found
    ]


# -- 1. product descriptions ----------------------------------------------------------------


@register
class DescribeProduct(Pipeline):
    """Brand voice and product facts from memory → a draft in each shop language → checks
    against the facts → a `catalog.update_description` proposal, sources per paragraph."""

    name = "catalog.describe_product"
    capabilities = ("draft", "detect_language", "embed")
    purpose = (
        "Writes each product's description in your shop's languages from its facts, checks "
        "every claim against them, and brings it to you to approve."
    )

    class Input(PipelineInput):
        languages: list[str] | None = None
        # An eval's product (agents/evals) instead of one in the shop: nothing is written.
        eval_product: dict[str, Any] | None = None
        product_id: int | None = Field(None, validate_default=True)
        check_product_id = required_outside_evals("product_id", "eval_product")

    minutes_saved = 15.0
    prompts = ("description",)

    @step(attempts=3, backoff=0.5)
    def start(self, ctx):
        item = ctx.input.get("eval_product")
        if item is not None and ctx.run.trigger != "eval":
            raise PermanentError("an eval's product is described only in an eval's run")
        if item is not None:
            product = ctx.tool("catalog.eval_product", workspace_id=ctx.workspace_id, item=item)
        else:
            product = ctx.tool(
                "catalog.product",
                workspace_id=ctx.workspace_id,
                product_id=ctx.input["product_id"],
            )
        brand = ctx.recall(
            f"brand voice, tone and words to avoid for {product['title']}",
            namespaces=[product["brand_namespace"]],
            k=6,
        )
        facts = ctx.recall(product["title"], namespaces=["products"], k=4)
        own = [f for f in facts if f["key"] == f"product:{product['product_id']}"]
        return goto("draft", product=product, brand=_compact(brand), product_memory=_compact(own))

    @step(attempts=3, backoff=1.0, max_backoff=20.0)
    def draft(self, ctx):
        product, brand = ctx.state["product"], ctx.state["brand"]
        facts = "\n".join([product["facts"]] + [m["content"] for m in ctx.state["product_memory"]])
        prices = [Decimal(price) for price in product["prices"]]
        # An attribute list never replaces a description someone wrote: the template may
        # stand in only where what is there is thin.
        thin = len(product["body_text"].split()) < THIN_DESCRIPTION_WORDS
        written, results, kept, thrown_away = {}, [], [], []
        version = prompts.version_for(ctx.run, "description")
        for language in ctx.input.get("languages") or product["languages"]:
            ask = drafts.Ask(
                messages=_description_messages(product, brand, language, version),
                prompt=version.tag,
                language=language,
                max_tokens=500,
                template="description.attributes",
                context=_template_context(product),
                template_fits=thin,
                shop_languages=tuple(product["languages"]),
            )
            draft = drafts.write(ctx, ask, facts=facts, prices=prices, shown=_visible)
            thrown_away += drafts.thrown_away(draft, language=language)
            if draft["tier"] == "template" and not thin:
                kept.append(language)
                continue
            written[language] = {
                "html": html.from_text(draft["content"]),
                "tier": draft["tier"],
                "model": draft["model"],
                "fallback": draft["fallback"],
                "verdict": drafts.verdict(draft),
            }
            results += (
                draft["checks"]
                + checks.check_description(
                    text=_visible(draft["content"]),
                    language=language,
                    facts=facts,
                    prices=prices,
                    banned=_banned_words(brand),
                )[1:]
            )  # the facts check is the draft's own, above
        if not written:
            return finish(
                {
                    "proposal": None,
                    "reason": "no model could write a description, and the one the product has "
                    "is better than a list of its attributes: it is kept",
                    "kept": kept,
                }
            )
        return goto("propose", drafts=written, checks=results, kept=kept, failed_drafts=thrown_away)

    @step(proposes=True)
    def propose(self, ctx):
        product, drafts, results = ctx.state["product"], ctx.state["drafts"], ctx.state["checks"]
        cited = ctx.state["product_memory"] + ctx.state["brand"]
        sources = [
            {**_parts(item["source"]), "language": language, "paragraph": number}
            for language, draft in sorted(drafts.items())
            for number, paragraph in enumerate(html.paragraphs(draft["html"]), start=1)
            for item in _supporting(paragraph, cited)
        ]
        return ctx.propose(
            "catalog.update_description",
            target=f"product:{product['product_id']}",
            payload={
                "product_id": product["product_id"],
                "descriptions": {lang: d["html"] for lang, d in drafts.items()},
                "drafted_by": {lang: d["tier"] for lang, d in drafts.items()},
                "checks": results,
                "failed_drafts": ctx.state.get("failed_drafts", []),
            },
            rationale=_description_rationale(product, drafts, results),
            sources=sources,
            resume="done",
        )

    @step()
    def done(self, ctx):
        return finish(_decided(ctx.state["decision"]))


def _description_messages(product, brand, language, version) -> list[dict[str, str]]:
    name = drafts.language_name(language)
    return untrusted.data_messages(
        instructions=version.text(shop_name=product["shop_name"], language=name),
        data={
            "product facts": product["facts"],
            "brand voice": "\n".join(item["content"] for item in brand) or "(none given)",
        },
        # The title is the shop's (or a webhook's) text: named in the facts, never here.
        task=f"Write the product's description in {name}.",
    )


def _template_context(product) -> dict[str, Any]:
    """What the template tier can say without a model: the attributes, and the materials the
    shop's own text names (so the fact check finds them in the facts)."""
    prices = product["prices"]
    shop_text = " ".join([product["title"], product["body_text"], *product["tags"]])
    materials = checks.materials_in(shop_text)
    return {
        "title": product["title"],
        "vendor": product["vendor"],
        "product_type": product["product_type"],
        "options": product["options"],
        "tags": product["tags"],
        **({"price_min": prices[0], "price_max": prices[-1]} if prices else {}),
        **({"attributes": {"material": ", ".join(materials)}} if materials else {}),
    }


def _banned_words(brand: list[dict[str, str]]) -> list[str]:
    """The brand's own list (`brand/banned-words`: "...: a, b, c.") over the default one."""
    for item in brand:
        if item["key"] == "banned-words":
            listed = item["content"].split(":", 1)[-1]
            words = [w.strip(" .") for w in listed.split(",") if w.strip(" .")]
            return sorted(set(words) | set(checks.DEFAULT_BANNED))
    return checks.DEFAULT_BANNED


def _parts(source: str) -> dict[str, Any]:
    path, version = source.rsplit("@", 1)
    namespace, key = path.split("/", 1)
    return {"namespace": namespace, "key": key, "version": int(version)}


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[^\W\d_]{4,}", text.lower())}


def _supporting(paragraph: str, cited: list[dict[str, str]]) -> list[dict[str, str]]:
    """The memory a paragraph draws on: items sharing at least two content words with it;
    the product's own facts when nothing does (every paragraph rests on them)."""
    words = _content_words(paragraph)
    found = [item for item in cited if len(words & _content_words(item["content"])) >= 2]
    return found or [item for item in cited if item["key"].startswith("product:")][:1]


def _description_rationale(product, written, results) -> str:
    writers: dict[str, list[str]] = {}  # who wrote it -> the languages it wrote
    for lang, d in sorted(written.items()):
        writer = writer_words(d["tier"], d["model"], fallback=d["fallback"])
        writers.setdefault(writer, []).append(drafts.language_name(lang))
    made_by = "; ".join(f"{' and '.join(langs)} by {writer}" for writer, langs in writers.items())
    # How each language's draft came to be, where it took more than one try.
    story = " ".join(
        f"{drafts.language_name(lang)}: {d['verdict'].rsplit(' All checks passed.', 1)[0]}"
        for lang, d in sorted(written.items())
        if d.get("verdict") and "failed its checks" in d["verdict"]
    )
    made_by += f". {story}" if story else ""
    words = len(product["body_text"].split())
    verdict = drafts.checks_verdict(checks.failed(results))
    return f"The shop's description has {words} words now. Written: {made_by}. {verdict}"


def _decided(decision: dict[str, Any]) -> dict[str, Any]:
    return {key: decision.get(key) for key in ("proposal", "status", "reason", "error", "edited")}


# -- 2. stock alerts ----------------------------------------------------------------------------


@register
class InventoryAlert(Pipeline):
    """Days of cover from the last 30 days of orders; below the threshold (or sold out): an
    alert on the Catalog page and a proposal: hide a sold-out product that does not sell out
    of stock, otherwise a restock note for the owner."""

    name = "catalog.inventory_alert"
    capabilities = ()
    purpose = "Watches your stock and tells you before a product sells out; hides one that has."

    class Input(PipelineInput):
        variant_id: int
        threshold_days: float | None = None

    minutes_saved = 4.0

    @step(attempts=3, backoff=0.5)
    def start(self, ctx):
        stock = ctx.tool(
            "catalog.stock", workspace_id=ctx.workspace_id, variant_id=ctx.input["variant_id"]
        )
        threshold = float(ctx.input.get("threshold_days", DEFAULT_COVER_DAYS))
        quantity, cover = stock["quantity"], stock["days_of_cover"]
        if quantity is None or (quantity > 0 and (cover is None or cover >= threshold)):
            return finish({"alert": None, "quantity": quantity, "days_of_cover": cover})
        kind = "sold_out" if quantity <= 0 else "low_stock"
        alert = ctx.tool(
            "catalog.alert_raise",
            workspace_id=ctx.workspace_id,
            variant_id=stock["variant_id"],
            kind=kind,
            quantity=quantity,
            days_of_cover=cover,
            daily_sales=stock["daily_sales"],
            threshold=threshold,
            message=_alert_message(stock, kind),
        )
        return goto("propose", stock=stock, kind=kind, alert=alert, threshold=threshold)

    @step(proposes=True)
    def propose(self, ctx):
        stock, kind = ctx.state["stock"], ctx.state["kind"]
        rationale = _alert_message(stock, kind)
        if (
            kind == "sold_out"
            and not stock["continues_selling"]
            and stock["product_status"] == "active"
        ):
            return ctx.propose(
                "catalog.set_product_status",
                target=f"product:{stock['product_id']}",
                payload={"product_id": stock["product_id"], "status": "draft"},
                rationale=rationale
                + " It does not sell when out of stock: hide it until it is back.",
                resume="done",
            )
        return ctx.propose(
            "core.note",
            target=f"variant:{stock['variant_id']}",
            payload={
                "namespace": "inventory",
                "key": f"restock-{stock['variant_id']}",
                "content": _restock_note(stock, ctx.state["threshold"]),
            },
            rationale=rationale,
            resume="done",
        )

    @step()
    def done(self, ctx):
        return finish(
            {
                "alert": ctx.state["alert"],
                "kind": ctx.state["kind"],
                **_decided(ctx.state["decision"]),
            }
        )


def _alert_message(stock, kind) -> str:
    if kind == "sold_out":
        return f"{stock['title']} is sold out."
    return (
        f"{stock['title']}: {stock['quantity']} left, about {stock['days_of_cover']:g} days of "
        f"cover at {stock['daily_sales']:g} sold a day."
    )


def _restock_note(stock, threshold: float) -> str:
    """What to reorder: enough for 30 days at the recent pace, beyond what is left."""
    wanted = math.ceil(stock["daily_sales"] * 30) - max(stock["quantity"] or 0, 0)
    pace = f"{stock['daily_sales']:g} a day over the last 30 days"
    if wanted <= 0:
        return f"Restock {stock['title']}: {stock['quantity']} left ({pace})."
    return (
        f"Restock {stock['title']}: {stock['quantity']} left, selling {pace}; order about "
        f"{wanted} to cover the next 30 days (alert threshold {threshold:g} days of cover)."
    )


# -- 3. customer replies ---------------------------------------------------------------------


# intent → (template, what it needs to be safe to send as is)
TEMPLATED = {
    "track_order": ("reply.order_status", "order"),
    "delivery_period": ("reply.shipping", "shipping"),
    "delivery_options": ("reply.shipping", "shipping"),
    "check_refund_policy": ("reply.returns", "returns"),
}
# The numbers a policy's memory item must hold (metadata) for its template, then the ones
# the template uses when they are there.
POLICY_NUMBERS = {
    "shipping": (("delivery_days_min", "delivery_days_max"), ("free_shipping_over", "currency")),
    "returns": (("return_days",), ("refund_days",)),
}


@register
class ReplyToCustomer(Pipeline):
    """Detect the language → classify the intent (local) → a templated reply where the facts
    are known, else a draft grounded in the shop's policies → a `catalog.send_reply` proposal."""

    name = "catalog.reply_to_customer"
    capabilities = ("detect_language", "classify", "draft", "embed")
    purpose = (
        "Answers customers in their own language: order-status replies from your templates "
        "go out by themselves, the rest are drafted from your policies for you to approve."
    )

    class Input(PipelineInput):
        # An eval's item (agents/evals) instead of a message in the shop: nothing is written.
        eval_item: dict[str, Any] | None = None
        message_id: int | None = Field(None, validate_default=True)
        check_message_id = required_outside_evals("message_id", "eval_item")

    minutes_saved = 6.0
    prompts = ("reply",)

    @step(attempts=3, backoff=0.5)
    def start(self, ctx):
        item = ctx.input.get("eval_item")
        if item is not None and ctx.run.trigger != "eval":
            raise PermanentError("an eval item is answered only in an eval's run")
        if item is not None:
            message = ctx.tool("catalog.eval_message", workspace_id=ctx.workspace_id, item=item)
        else:
            message = ctx.tool(
                "catalog.message",
                workspace_id=ctx.workspace_id,
                message_id=ctx.input["message_id"],
            )
        text = f"{message['subject']}\n{message['body']}".strip()
        detected = ctx.model(
            "detect_language", texts=[message["body"]], default=message["languages"][0]
        )
        intent = ctx.model("classify", texts=[text])["results"][0]
        language = detected["results"][0]["language"]
        if item is None:
            ctx.tool(
                "catalog.message_annotate",
                workspace_id=ctx.workspace_id,
                message_id=message["message_id"],
                language=language,
                intent=intent["intent"],
                confidence=intent.get("confidence"),
            )
        return goto("compose", message=message, language=language, intent=intent)

    @step(attempts=3, backoff=1.0, max_backoff=20.0)
    def compose(self, ctx):
        message, language, intent = ctx.state["message"], ctx.state["language"], ctx.state["intent"]
        shop_languages = tuple(message["languages"])
        templated = _templated(message, intent["intent"])
        if templated is not None:
            template, context, sources = templated
            ask = drafts.Ask(
                messages=[],
                language=language,
                max_tokens=0,
                template=template,
                context=context,
                shop_languages=shop_languages,
            )
            facts = _order_facts(message)
            draft = drafts.write_template(ctx, ask, facts=facts)
        else:
            # The shop's policies, and what memory holds about its products: a question about
            # a product is answered from that product's facts, never from a policy template.
            found = ctx.recall(message["body"], namespaces=["policies", "products"], k=4)
            sources = [_source(item) for item in found]
            version = prompts.version_for(ctx.run, "reply")
            ask = drafts.Ask(
                messages=_reply_messages(message, found, language, version),
                prompt=version.tag,
                language=language,
                max_tokens=400,
                template="reply.acknowledge",
                context=_greeting(message),
                shop_languages=shop_languages,
            )
            facts = "\n".join([_order_facts(message), *(item["content"] for item in found)])
            draft = drafts.write(ctx, ask, facts=facts)
        reply = {
            "body": draft["content"].strip(),
            "tier": draft["tier"],
            "model": draft["model"],
            "checks": draft["checks"],
            "failed_drafts": drafts.thrown_away(draft),
            "verdict": drafts.verdict(draft),
        }
        return goto("propose", reply=reply, sources=sources)

    @step(proposes=True)
    def propose(self, ctx):
        message, reply, intent = ctx.state["message"], ctx.state["reply"], ctx.state["intent"]
        language, confidence = ctx.state["language"], intent.get("confidence")
        sure = isinstance(confidence, int | float)
        return ctx.propose(
            "catalog.send_reply",
            target=f"message:{message['message_id']}",
            payload={
                "message_id": message["message_id"],
                "subject": _reply_subject(message["subject"]),
                "body": reply["body"],
                "language": language,
                "intent": intent["intent"],
                **({"confidence": round(float(confidence), 4)} if sure else {}),
                # Who read the intent: "local", "local+remote" (the cascade's second opinion
                # agreed) or "remote" (it differed): a fact a rule may ask for.
                "intent_by": _intent_by(intent),
                "tier": reply["tier"],
                "checks": reply["checks"],
                # Drafts thrown away for failing their checks, shown on the card: what stands
                # in for them waits for a person.
                "failed_drafts": reply["failed_drafts"],
            },
            rationale=(
                f"The customer wrote in {drafts.language_name(language)}, about "
                f"{str(intent['intent']).replace('_', ' ')} ({_how_sure(intent)}); "
                f"the reply is by {writer_words(reply['tier'], reply['model'])}. "
                f"{reply['verdict']}"
            ),
            sources=ctx.state["sources"],
            resume="done",
        )

    @step()
    def done(self, ctx):
        return finish(_decided(ctx.state["decision"]))


def _intent_by(intent: dict[str, Any]) -> str:
    if intent.get("classified_by") == "remote":
        return "remote"
    return "local+remote" if intent.get("confirmed_by") else "local"


def _how_sure(intent: dict[str, Any]) -> str:
    """Who read the intent and how sure it was, for the card."""
    confidence = intent.get("confidence")
    if intent.get("classified_by") == "remote":
        return (
            f"read by the remote model; the local classifier guessed {intent['local_intent']} "
            f"at {intent['local_confidence']:.0%}"
        )
    said = f"{confidence:.0%} sure" if isinstance(confidence, int | float) else "confidence unknown"
    return said + (", confirmed by the remote model" if intent.get("confirmed_by") else "")


def _reply_subject(subject: str) -> str:
    """The customer's subject after "Re:", on one line: a line break in a mail header would
    start a header of the customer's choosing (a Bcc, say)."""
    line = " ".join(subject.split())
    return f"Re: {line}" if line else ""


def _greeting(message) -> dict[str, Any]:
    context = {"shop_name": message["shop_name"], "customer_name": message["customer_name"]}
    if message["order"]:
        context["order_name"] = message["order"]["name"]
    return context


def _templated(message, intent: str) -> tuple[str, dict[str, Any], list[str]] | None:
    """The template, its context and its sources, when the intent has one and the facts it
    needs are known; None sends the message to a drafted reply."""
    if intent not in TEMPLATED:
        return None
    template, needs = TEMPLATED[intent]
    context = _greeting(message)
    if needs == "order":
        if not message["order"]:
            return None
        return template, {**context, "status": message["order"]["status"]}, []
    policy = message["policies"].get(needs)
    numbers = (policy or {}).get("metadata") or {}
    required, optional = POLICY_NUMBERS[needs]
    if not set(required) <= set(numbers):
        return None
    known = {k: numbers[k] for k in required + optional if k in numbers}
    return template, {**context, **known}, [policy["source"]]


def _order_facts(message) -> str:
    """What the shop knows about the customer's order: a reply may state it."""
    order = message["order"]
    if not order:
        return ""
    return (
        f"{order['name']}: {order['status']}, placed {order['placed_at']}, "
        f"{order['total_price']} {order['currency']}"
    )


def _reply_messages(message, policies, language, version) -> list[dict[str, str]]:
    name = drafts.language_name(language)
    order = message["order"]
    data = {"customer message": f"{message['subject']}\n{message['body']}".strip()}
    if message["customer_name"]:  # the customer's own words, like the message
        data["customer name"] = message["customer_name"]
    data["shop policies and product facts"] = (
        "\n".join(f"- {p['content']}" for p in policies) or "(none found)"
    )
    if order:
        data["the customer's order"] = _order_facts(message)
    return untrusted.data_messages(
        instructions=version.text(shop_name=message["shop_name"], language=name),
        data=data,
        task=f"Write the reply to the customer in {name}.",
    )
