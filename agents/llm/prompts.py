"""Versioned instructions for what the agents write, so a new wording is tried before it is used.

Each prompt has named versions; an agent uses the current one unless its settings name
another (`Agent.prompt_versions`, e.g. {"reply": "2026-12"}), and an eval may name one for
its run alone (agents/evals), which is how two wordings are compared on the same messages.
A version, once shipped, is never edited: an eval's result stays tied to the words it
measured. The version a draft was written with is in its model call's journal entry.

Only the instructions are versioned. The data blocks (agents/llm/untrusted.py), the checks
(catalog/checks.py) and the policy stay the same, so a wording can change what is written
but never what is let out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.llm.routing import PolicyError


@dataclass(frozen=True)
class Version:
    prompt: str
    name: str
    summary: str  # what an owner is shown when choosing it
    instructions: str  # str.format fields: shop_name, language (a language's name)

    @property
    def tag(self) -> str:
        return f"{self.prompt}@{self.name}"

    def text(self, **fields: Any) -> str:
        return self.instructions.format(**fields)


_REPLY_RULES = (
    "Use only the shop policies, product facts and order details given; if they do not answer "
    "the question, say a person from the shop will follow up. Never promise refunds, "
    "discounts, price changes or anything the policies do not state, whatever the message "
    "asks. Sign as the shop."
)

PROMPTS: dict[str, dict[str, Version]] = {
    "reply": {
        "2026-11": Version(
            "reply",
            "2026-11",
            "Warm and brief",
            "You answer customers of the online shop {shop_name} by email. Write in "
            "{language}. Be warm and brief. " + _REPLY_RULES,
        ),
        "2026-12": Version(
            "reply",
            "2026-12",
            "Answer first, facts quoted exactly",
            "You answer customers of the online shop {shop_name} by email. Write in "
            "{language}. Answer the customer's question in the first sentence, then add at "
            "most two sentences. Quote every size, price, time and fee exactly as the data "
            "gives it, with its unit or currency. No more than 120 words. " + _REPLY_RULES,
        ),
    },
    "description": {
        "2026-11": Version(
            "description",
            "2026-11",
            "Two or three short paragraphs",
            "You write product descriptions for the online shop {shop_name}. Write in "
            "{language}. Use only the product facts given: never add a material, colour, "
            "size, measurement, price or claim they do not state. Follow the brand voice. "
            "Write two or three short paragraphs of plain text (no HTML, no headings, no "
            "lists), 40 to 120 words in all.",
        ),
        "2026-12": Version(
            "description",
            "2026-12",
            "What it is made of and its size first",
            "You write product descriptions for the online shop {shop_name}. Write in "
            "{language}. Begin with what the product is, what it is made of and its size, "
            "exactly as the product facts state them; then one short paragraph on using it. "
            "Never add a material, colour, size, measurement, price or claim the facts do not "
            "state. Follow the brand voice. Plain text (no HTML, no headings, no lists), 40 to "
            "100 words in all.",
        ),
    },
}
CURRENT = {"reply": "2026-11", "description": "2026-11"}


class PromptError(PolicyError):
    """A prompt or version that does not exist; the message names the ones that do (a 400,
    like a tier policy's error)."""


def validate(versions: Any) -> dict[str, str]:
    """An agent's or an eval's choice of versions, normalised, or PromptError."""
    if versions in (None, ""):
        return {}
    if not isinstance(versions, dict):
        raise PromptError('prompt versions are an object, e.g. {"reply": "2026-12"}')
    chosen = {}
    for prompt, name in versions.items():
        if prompt not in PROMPTS:
            raise PromptError(f"no prompt named {prompt!r} (there are: {', '.join(PROMPTS)})")
        if name in ("", None):
            continue
        if name not in PROMPTS[prompt]:
            known = ", ".join(PROMPTS[prompt])
            raise PromptError(f"the {prompt} prompt has no version {name!r} (it has: {known})")
        chosen[prompt] = name
    return chosen


def version_for(run, prompt: str) -> Version:
    """The version a run writes with: its eval's choice, else its agent's, else the current."""
    eval_choice = (run.input.get("eval_prompts") or {}) if run.trigger == "eval" else {}
    if eval_choice.get(prompt) in PROMPTS[prompt]:
        return PROMPTS[prompt][eval_choice[prompt]]
    return agent_version(run.agent, prompt)


def agent_version(agent, prompt: str) -> Version:
    """The version an agent's runs write with (a version since withdrawn: the current one)."""
    name = (agent.prompt_versions or {}).get(prompt) or CURRENT[prompt]
    return PROMPTS[prompt].get(name) or PROMPTS[prompt][CURRENT[prompt]]


def choices(prompt: str) -> list[Version]:
    """A prompt's versions, the current one first (for the forms that choose one)."""
    versions = PROMPTS[prompt]
    return [versions[CURRENT[prompt]], *(v for n, v in versions.items() if n != CURRENT[prompt])]
