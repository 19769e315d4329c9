"""A scripted OpenAI-compatible model server for replayable benchmarks.

Answers `POST /v1/chat/completions` deterministically from the request itself, so a shop
day replays to the same drafts every time, with no weights and no network:

- a product description: the product facts from the request's data block, restated in two
  short paragraphs; every `flaw_every`-th description also claims a colour the facts do not
  state (what a real model sometimes does), for the fact check to catch;
- a customer reply: a greeting, the first shop policy given, and a sign-off;
- a content outline or post: built from the brief's topic;
- anything else: the last user message's first sentence.

Usage is reported (as the tests' server counts it) so the cost ledger has figures to add up.
"""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.openai_server import FakeOpenAI, Reply

DATA = re.compile(r"<<<DATA (?P<label>.+?) [0-9a-f]+>>>\n(?P<text>.*?)\n<<<END DATA", re.S)


class ScriptedModel(FakeOpenAI):
    """The tests' OpenAI-compatible server, answering from the request instead of a script."""

    def __init__(self, *, flaw_every: int = 6) -> None:
        self.flaw_every = flaw_every
        self.calls = 0
        self._descriptions = 0
        super().__init__()

    def _next(self, body: dict[str, Any]) -> Reply:
        return Reply(content=self.answer(body.get("messages") or []))

    def answer(self, messages: list[dict[str, Any]]) -> str:
        with self._lock:
            self.calls += 1
        system = next((m["content"] for m in messages if m.get("role") == "system"), "")
        user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        data = {m["label"]: m["text"].strip() for m in DATA.finditer(user)}
        if "product descriptions" in system:
            return self._description(data.get("product facts", ""))
        if "You answer customers" in system:
            return _reply(system, data)
        if "You plan content" in system:
            return _outline(data)
        if "You write content" in system:
            return _post(system, data)
        return (user.split(". ")[0] or "OK").strip()

    def _description(self, facts: str) -> str:
        with self._lock:
            self._descriptions += 1
            flawed = self.flaw_every and self._descriptions % self.flaw_every == 0
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", facts) if s.strip()]
        first, rest = sentences[:2], sentences[2:6]
        text = " ".join(first) + "\n\n" + (" ".join(rest) or "Made to be used every day.")
        if flawed:
            text += " It also comes in bright red."
        return text


def _reply(system: str, data: dict[str, str]) -> str:
    shop = re.search(r"online shop (.+?) by email", system)
    policies = data.get("shop policies", "").lstrip("- ").split("\n")[0]
    policy = policies if policies and policies != "(none found)" else ""
    lines = [
        "Hello,",
        "",
        "Thank you for your message. " + (policy or "A person from the shop will follow up."),
        "",
        "Kind regards,",
        f"The {shop.group(1) if shop else 'shop'} team",
    ]
    return "\n".join(lines)


def _topic(data: dict[str, str]) -> str:
    brief = data.get("brief", "")
    found = re.search(r"(?im)^topic:\s*(.+)$", brief)
    return (found.group(1) if found else brief.split("\n")[0]).strip() or "News from the shop"


def _outline(data: dict[str, str]) -> str:
    topic = _topic(data)
    return f"1. Why {topic.lower()} matters\n2. What we make for it\n3. How to choose"


def _post(system: str, data: dict[str, str]) -> str:
    topic = _topic(data)
    if "280" in system or "social" in system.lower():
        return f"{topic}: what we learned making it, in one minute. Read more on our blog."
    body = (
        f"{topic} is what our customers ask us about most this season. Here is what we "
        "have learned making things that last, and how to choose what suits you.\n\n"
        "Look for natural fibres, simple care and a cut you will wear for years."
    )
    return f"{topic}\n\n{body}"
