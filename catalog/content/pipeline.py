"""`content.post`: the content writer's pipeline, readable top to bottom as its state machine.

    start → research → outline → draft → review ⟶ (a person approves, maybe editing)
          → schedule ⟶ (a person approves the time) → done
    start → ideate (angles for the brief, on demand: finished, never proposed)

Research reads memory (the canonical brief, the brand voice, product facts, the versions of
earlier posts a person edited) and only the URLs the brief lists, through the journaled
`ctx.http`, size-capped. Whatever those pages, memory or the brief say reaches a model only
as data blocks; model output only becomes a proposal, which a person decides.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field

from agents.context import NonDeterminism
from agents.llm import untrusted
from agents.pipelines import (
    PermanentError,
    Pipeline,
    PipelineInput,
    TransientError,
    finish,
    goto,
    register,
    required_outside_evals,
    step,
)
from catalog import drafts as checked
from catalog import html
from catalog.checks import MATERIALS, language_name
from catalog.content import tools as _tools  # noqa: F401 - registers the content tools
from catalog.content.formats import FORMATS, fit, payload_key, split

MAX_PAGE_BYTES = 200_000  # read from each research URL
MAX_PAGE_CHARS = 4_000  # of its text, given to the model


def _source(item: dict[str, Any]) -> dict[str, Any]:
    return {"namespace": item["namespace"], "key": item["key"], "version": item["version"]}


def _language_name(code: str) -> str:
    return language_name(code)


@register
class ContentPost(Pipeline):
    name = "content.post"
    capabilities = ("outline", "ideate", "draft", "detect_language", "embed")
    purpose = (
        "Turns your brief into blog posts, newsletters and social posts in your languages, "
        "for you to edit, approve and schedule."
    )

    class Input(PipelineInput):
        ideate: int | None = None
        # An eval's brief (agents/evals) instead of one of the shop's: nothing is written.
        eval_brief: dict[str, Any] | None = None
        brief_id: int | None = Field(None, validate_default=True)
        check_brief_id = required_outside_evals("brief_id", "eval_brief")

    # The drafts and the schedule count through their effectors' minutes; this is what a run
    # without a proposal replaces: thinking of five angles for a brief.
    minutes_saved = 5.0

    @step(attempts=3, backoff=0.5)
    def start(self, ctx):
        item = ctx.input.get("eval_brief")
        if item is not None and ctx.run.trigger != "eval":
            raise PermanentError("an eval's brief is written only in an eval's run")
        if item is not None:
            brief = ctx.tool("content.eval_brief", workspace_id=ctx.workspace_id, item=item)
            return goto("research", brief=brief)
        brief = ctx.tool(
            "content.brief", workspace_id=ctx.workspace_id, brief_id=ctx.input["brief_id"]
        )
        if ctx.input.get("ideate"):
            return goto("ideate", brief=brief)
        return goto("research", brief=brief)

    @step(attempts=3, backoff=1.0)
    def research(self, ctx):
        brief = ctx.state["brief"]
        about = f"{brief['topic']} {brief['audience']}".strip()
        canonical = [
            item
            for item in ctx.recall(brief["topic"], namespaces=["briefs"], k=3)
            if item["key"] == brief["key"]
        ]
        brand = ctx.recall(f"brand voice and tone: {about}", namespaces=[brief["tone"]], k=5)
        # Recall always gives five products, near or not (its score is a rank fusion, not a
        # similarity to threshold): only those the brief is about become its facts and the
        # template's points, and its posts may name no other product of the shop.
        recalled = ctx.recall(about, namespaces=["products"], k=5)
        examples = ctx.recall(about, namespaces=["posts"], k=3)
        pages = [_fetch(ctx, url) for url in brief["research_urls"]]
        # Last of the step's calls, so a research step journaled before it existed replays
        # its recorded calls in their places.
        shop = ctx.tool("content.product_titles", workspace_id=ctx.workspace_id)
        products = [item for item in recalled if is_about(about, _title_of(item, shop))]
        other_products = [p["title"] for p in shop if not is_about(about, p["title"])]
        memory = {
            "brief": canonical,
            "brand": brand,
            "products": products,
            "examples": examples,
        }
        compact = {
            name: [{**_source(i), "content": i["content"]} for i in items]
            for name, items in memory.items()
        }
        return goto("outline", memory=compact, pages=pages, other_products=other_products)

    @step(attempts=3, backoff=1.0, max_backoff=20.0)
    def outline(self, ctx):
        brief = ctx.state["brief"]
        answer = ctx.model(
            "outline",
            messages=_outline_messages(brief, ctx.state),
            template="content.outline",
            context=_template_context(brief, ctx.state),
            language=brief["languages"][0],
            max_tokens=400,
        )
        return goto("draft", outline=_made(answer, text=answer["content"].strip()))

    @step(attempts=3, backoff=1.0, max_backoff=20.0)
    def draft(self, ctx):
        """Each channel in each language, checked like every model-written text
        (catalog/drafts.py): its language, no markers or echoed instructions, not cut off,
        and no number, colour, material, contact or link that the brief, the memory it cites
        or the pages read do not state, and no product of the shop the brief is not about
        (catalog/checks.py products_check); a failed draft is written again once, then the
        channel's template stands in and the card shows what was thrown away."""
        brief, drafts = ctx.state["brief"], {}
        facts = _facts(brief, ctx.state)
        for channel in brief["channels"]:
            for language in brief["languages"]:
                ask = checked.Ask(
                    messages=_draft_messages(brief, ctx.state, channel, language),
                    language=language,
                    max_tokens=FORMATS[channel].max_tokens,
                    template=f"content.{channel}",
                    context=_template_context(brief, ctx.state),
                    shop_languages=tuple(brief["languages"]),
                    other_products=tuple(ctx.state.get("other_products") or ()),
                )
                draft = checked.write(ctx, ask, facts=facts, shown=_shown(channel, brief))
                title, body, notes = fit(
                    channel, *split(channel, draft["content"]), stand_in=brief["topic"]
                )
                drafts[f"{channel}.{language}"] = _made(
                    draft,
                    channel=channel,
                    language=language,
                    title=title,
                    body=body,
                    notes=notes,
                    checks=draft["checks"],
                    failed_drafts=checked.thrown_away(draft, language=language, channel=channel),
                    verdict=checked.verdict(draft),
                )
        return goto("review", drafts=drafts)

    @step(proposes=True)
    def review(self, ctx):
        brief, drafts = ctx.state["brief"], ctx.state["drafts"]
        if brief["brief_id"] is not None:  # an eval's brief is in no list to update
            ctx.tool(
                "content.brief_status",
                workspace_id=ctx.workspace_id,
                brief_id=brief["brief_id"],
                status="in_review",
            )
        payload: dict[str, Any] = {"brief_id": brief["brief_id"]}
        for draft in drafts.values():
            spec = FORMATS[draft["channel"]]
            if spec.title:
                payload[payload_key(draft["channel"], draft["language"], spec.title)] = draft[
                    "title"
                ]
            payload[payload_key(draft["channel"], draft["language"], "body")] = draft["body"]
        payload["drafted_by"] = {key: draft["tier"] for key, draft in drafts.items()}
        payload["notes"] = [
            {"draft": key, **note} for key, draft in drafts.items() for note in draft["notes"]
        ]
        # What the checks found, for the card and for the policy's gate.
        payload["checks"] = [
            {"draft": key, **check}
            for key, draft in drafts.items()
            for check in draft.get("checks", [])
            if not check["ok"]
        ]
        payload["failed_drafts"] = [
            failed for draft in drafts.values() for failed in draft.get("failed_drafts", [])
        ]
        return ctx.propose(
            "content.accept_draft",
            target=f"brief:{brief['brief_id']}",
            payload=payload,
            rationale=_review_rationale(ctx.state),
            sources=_sources(ctx.state),
            resume="schedule",
        )

    @step(proposes=True)
    def schedule(self, ctx):
        brief, decision = ctx.state["brief"], ctx.state["decision"]
        if decision["status"] != "committed":
            return goto("done")
        publish_at = ctx.tool(
            "content.publish_time",
            workspace_id=ctx.workspace_id,
            brief_id=brief["brief_id"],
            now=ctx.now(),
        )
        posts = [
            {key: kept[key] for key in ("channel", "language", "draft_id", "version")}
            for kept in decision["result"]["drafts"]
        ]
        return ctx.propose(
            "content.schedule_post",
            target=f"brief:{brief['brief_id']}",
            payload={"brief_id": brief["brief_id"], "publish_at": publish_at, "posts": posts},
            rationale=_schedule_rationale(brief, publish_at, posts),
            resume="done",
            key="schedule",
        )

    @step()
    def done(self, ctx):
        brief, decision = ctx.state["brief"], ctx.state["decision"]
        schedule = ctx.state.get("schedule")
        stopped = decision if decision["status"] != "committed" else schedule
        if stopped and stopped["status"] != "committed" and brief["brief_id"] is not None:
            ctx.tool(
                "content.brief_status",
                workspace_id=ctx.workspace_id,
                brief_id=brief["brief_id"],
                status="rejected" if stopped["status"] in ("rejected", "expired") else "failed",
                reason=stopped.get("reason") or stopped.get("error") or stopped["status"],
            )
        return finish(
            {
                "brief_id": brief["brief_id"],
                "drafts": _decided(decision),
                "schedule": _decided(schedule) if schedule else None,
            }
        )

    @step(attempts=3, backoff=1.0, max_backoff=20.0)
    def ideate(self, ctx):
        brief, count = ctx.state["brief"], int(ctx.input["ideate"])
        answer = ctx.model(
            "ideate",
            messages=_ideate_messages(brief, count),
            template="content.ideas",
            context=_template_context(brief, {}),
            language=brief["languages"][0],
            max_tokens=400,
        )
        ideas = _lines(answer["content"])[:count]
        return finish({"brief_id": brief["brief_id"], **_made(answer, ideas=ideas)})


# -- research ------------------------------------------------------------------------------------


def _fetch(ctx, url: str) -> dict[str, Any]:
    """One URL the brief lists: its text (capped), or why there is none. A page that cannot
    be read is noted, not fatal: the drafts are written from the rest."""
    if urlsplit(url).scheme not in ("http", "https"):
        return {"url": url, "error": "not an http(s) URL"}
    try:
        answer = ctx.http("GET", url, timeout=5, max_bytes=MAX_PAGE_BYTES, public_only=True)
    except NonDeterminism:
        raise  # the step itself changed between attempts: not the page's fault
    except (PermanentError, TransientError, OSError) as error:
        return {"url": url, "error": str(error)[:300]}
    if answer["status"] >= 400:
        return {"url": url, "error": f"HTTP {answer['status']}"}
    text = page_text(answer["body"])
    return {
        "url": url,
        "text": text[:MAX_PAGE_CHARS],
        "truncated": answer.get("truncated", False) or len(text) > MAX_PAGE_CHARS,
    }


# Words of a title that do not say which product it is: joining words, pack sizes, and the
# words a brief uses for its purpose ("shirts for cycling to work" is not about the "Denim
# work apron").
GENERIC_WORDS = frozenset(
    {"and", "the", "for", "with", "our", "from", "set", "pack", "pair", "piece", "size"}
    | {"work", "home", "everyday", "classic", "new"}
)
_MATERIAL = {word: name for name, words in MATERIALS.items() for word in words.split()}


def _words_of(text: str) -> set[str]:
    """A text's distinctive words: lowercase, three letters or more, not generic, singular
    ("shirts" is "shirt"), a material in any shop language by its English name ("lino" is
    "linen": the checks' own table)."""
    found = set()
    for word in re.findall(r"[^\W\d_]+", text.lower()):
        if len(word) < 3 or word in GENERIC_WORDS:
            continue
        word = _MATERIAL.get(word, word)
        found.add(word[:-1] if word.endswith("s") and len(word) > 3 else word)
    return found


def is_about(about: str, title: str) -> bool:
    """Whether a brief (its topic and audience) is about the product of this title: a
    distinctive word of the title is one of the brief's ("Caring for linen in summer" is about
    the "Linen shirt" and the "Linen napkins", not the "Stoneware mug")."""
    return bool(_words_of(title) & _words_of(about))


def _title_of(item: dict[str, Any], shop: list[dict[str, Any]]) -> str:
    """A recalled product's title: the shop's, by the product id memory keeps, else the
    fact's first words (catalog/services.py product_fact writes "Title (type by vendor).")."""
    product_id = (item.get("metadata") or {}).get("product_id")
    for product in shop:
        if product_id is not None and product["product_id"] == product_id:
            return product["title"]
    return item["content"].strip().split("\n", 1)[0].split(" (", 1)[0]


def page_text(body: Any) -> str:
    """A page's readable text: JSON as it is, HTML without its tags, scripts and styles."""
    if body is None:
        return ""
    if not isinstance(body, str):
        return json.dumps(body, ensure_ascii=False)
    if "<" in body and ">" in body:
        return html.visible_text(body)  # scripts and styles dropped with their content
    return body.strip()


# -- what the models are given ---------------------------------------------------------------


def _brief_block(brief: dict[str, Any]) -> str:
    lines = [f"Topic: {brief['topic']}"]
    if brief["audience"]:
        lines.append(f"Audience: {brief['audience']}")
    lines.append(f"Channels: {', '.join(brief['channels'])}")
    return "\n".join(lines)


def _data(brief: dict[str, Any], state: dict[str, Any]) -> dict[str, str]:
    """The brief and everything research found, each as its own data block."""
    memory = state.get("memory") or {}
    data = {"brief": _brief_block(brief)}
    data["brand voice"] = "\n".join(i["content"] for i in memory.get("brand", [])) or "(none given)"
    products = "\n".join(i["content"] for i in memory.get("products", []))
    if products:
        data["product facts"] = products
    for page in state.get("pages") or []:
        if page.get("text"):
            data[f"research {page['url']}"] = page["text"]
    examples = "\n---\n".join(i["content"] for i in memory.get("examples", []))
    if examples:
        data["posts the owner edited (their style)"] = examples
    return data


GROUNDING = (
    "Use only facts found in the data: the brief, the product facts and the research. Never "
    "invent prices, dates, discounts, statistics or claims. Follow the brand voice. Posts the "
    "owner edited show how the owner wants to sound: follow their style."
)


def _outline_messages(brief, state) -> list[dict[str, str]]:
    return untrusted.data_messages(
        instructions=(
            f"You plan content for {brief['shop_name']}. Write a short outline: the angle in "
            "one sentence, then three to five points, one per line. " + GROUNDING
        ),
        data=_data(brief, state),
        task=f"Outline the content for the brief in {_language_name(brief['languages'][0])}.",
    )


def _draft_messages(brief, state, channel: str, language: str) -> list[dict[str, str]]:
    name = _language_name(language)
    data = {**_data(brief, state), "outline": state["outline"]["text"]}
    return untrusted.data_messages(
        instructions=(
            f"You write content for {brief['shop_name']}. Write in {name}: "
            f"{FORMATS[channel].guidance}. Follow the outline. " + GROUNDING
        ),
        data=data,
        task=f"Write the {FORMATS[channel].label.lower()} in {name}.",
    )


def _ideate_messages(brief, count: int) -> list[dict[str, str]]:
    return untrusted.data_messages(
        instructions=(
            f"You suggest angles for content of {brief['shop_name']}: {count} different "
            "angles for the brief, one per line, each under 100 characters, no numbering."
        ),
        data={"brief": _brief_block(brief)},
        task=f"Give {count} angles in {_language_name(brief['languages'][0])}.",
    )


def _template_context(brief, state) -> dict[str, Any]:
    """What the template tier writes from, without a model: the brief and its facts."""
    products = (state.get("memory") or {}).get("products", [])
    points = [_first_sentence(item["content"]) for item in products[:3]]
    return {
        "shop_name": brief["shop_name"],
        "topic": brief["topic"],
        "audience": brief["audience"],
        "points": [point for point in points if point],
    }


def _first_sentence(text: str) -> str:
    line = text.strip().split("\n", 1)[0]
    return re.split(r"(?<=[.!?])\s", line, maxsplit=1)[0][:200]


def _lines(text: str) -> list[str]:
    cleaned = (re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip() for line in text.splitlines())
    return [line for line in cleaned if line]


# -- what the cards say -------------------------------------------------------------------------


def _facts(brief, state) -> str:
    """Everything a post may claim: the brief, the memory it cites, the pages read."""
    memory = state.get("memory") or {}
    return "\n".join(
        [
            _brief_block(brief),
            *(item["content"] for items in memory.values() for item in items),
            *(page.get("text") or "" for page in state.get("pages") or []),
        ]
    )


def _shown(channel: str, brief) -> Any:
    """The text a channel's card shows of a model's answer: what is checked."""

    def shown(content: str) -> str:
        title, body, _ = fit(channel, *split(channel, content), stand_in=brief["topic"])
        return f"{title}\n{body}".strip() if title else body.strip()

    return shown


def _made(answer: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        **fields,
        "tier": answer["tier"],
        "model": answer["model"],
        "fallback": bool(answer.get("fallback")),
    }


def _review_rationale(state) -> str:
    drafts, outline, pages = state["drafts"], state["outline"], state["pages"]
    parts = []
    if any(d["tier"] == "template" for d in drafts.values()):
        parts.append(
            "No model configured for drafting: the template tier wrote these drafts from the "
            "brief. Edit them before approving."
        )
    made_by = ", ".join(f"{key}: {d['tier']} ({d['model']})" for key, d in sorted(drafts.items()))
    parts.append(f"Drafted by {made_by}; outline by {outline['tier']} ({outline['model']}).")
    read = [p["url"] for p in pages if p.get("text")]
    unread = [f"{p['url']} ({p['error']})" for p in pages if p.get("error")]
    if read:
        parts.append(f"Researched: {', '.join(read)}.")
    if unread:
        parts.append(f"Could not read: {', '.join(unread)}.")
    notes = [
        f"{key} {note['field']}: {note['detail']}"
        for key, d in sorted(drafts.items())
        for note in d["notes"]
    ]
    parts.append("Limits: " + "; ".join(notes) + "." if notes else "Every draft fits its channel.")
    checked_out = [
        f"{key}: {d['verdict']}" for key, d in sorted(drafts.items()) if d.get("verdict")
    ]
    if checked_out:
        parts.append("Checks: " + " ".join(checked_out))
    return " ".join(parts)


def _sources(state) -> list[dict[str, Any]]:
    memory = state["memory"]
    cited = [_source(item) for items in memory.values() for item in items]
    return cited + [{"url": page["url"]} for page in state["pages"] if page.get("text")]


def _schedule_rationale(brief, publish_at: str, posts: list[dict[str, Any]]) -> str:
    when = "the brief's due time" if brief["due_at"] == publish_at else "the next free slot"
    listed = ", ".join(f"{p['channel']} ({p['language']}) v{p['version']}" for p in posts)
    return f"Publish {listed} at {publish_at} ({when})."


def _decided(decision: dict[str, Any]) -> dict[str, Any]:
    return {key: decision.get(key) for key in ("proposal", "status", "reason", "error", "edited")}
