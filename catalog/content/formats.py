"""What each channel takes: a post's fields and their limits, and how a model's text is
split into them, trimmed to fit, and flagged when it did not."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ELLIPSIS = "…"


@dataclass(frozen=True)
class Format:
    channel: str
    label: str
    title: str  # the name of its title field ("title", "subject"), or "" for none
    title_max: int
    body_max: int
    guidance: str  # what the writer is asked for
    max_tokens: int

    def fields(self) -> list[str]:
        return [self.title, "body"] if self.title else ["body"]


FORMATS: dict[str, Format] = {
    "blog": Format(
        "blog",
        "Blog post",
        "title",
        120,
        20_000,
        "a blog post: the title on the first line (at most 120 characters), a blank line, "
        "then 300 to 600 words in short paragraphs of plain text (no HTML, no markdown)",
        1200,
    ),
    "newsletter": Format(
        "newsletter",
        "Newsletter",
        "subject",
        80,
        10_000,
        "a newsletter: the subject on the first line (at most 80 characters), a blank line, "
        "then a body of 150 to 300 words of plain text",
        800,
    ),
    "social": Format(
        "social",
        "Social post",
        "",
        0,
        280,
        "one social media post of at most 280 characters in all, hashtags included; no "
        "title, no quotation marks around it",
        200,
    ),
}
CHANNELS = tuple(FORMATS)

TITLE_PREFIX = re.compile(
    r"^\s*(?:#+\s*)?(?:title|subject|betreff|asunto|objet|oggetto|assunto)\s*:\s*", re.I
)


def payload_key(channel: str, language: str, field: str) -> str:
    """A draft's field in a proposal's payload: `blog.en.title`, `social.es.body`."""
    return f"{channel}.{language}.{field}"


def split(channel: str, text: str) -> tuple[str, str]:
    """(title, body) of a model's or template's text: the first line is the title of a
    channel that has one ("Title:", "Subject:" or a markdown # before it are dropped); a
    text of one line is all body."""
    text = (text or "").strip()
    first, _, rest = text.partition("\n")
    if not FORMATS[channel].title or not rest.strip():
        return "", text
    title = TITLE_PREFIX.sub("", first).strip().strip("*").strip()
    return title, rest.strip()


def trim(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word and ended with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ELLIPSIS)]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rstrip().rfind(" ")]
    return cut.rstrip(" ,;:.-\u2013\u2014") + ELLIPSIS


def fit(
    channel: str, title: str, body: str, *, stand_in: str = ""
) -> tuple[str, str, list[dict[str, Any]]]:
    """The title and body within the channel's limits, and a note for each thing changed or
    missing, for the card and the draft's record. A missing title becomes `stand_in` (the
    brief's topic), so the draft still reaches the board, where the note asks for a real one."""
    spec, notes = FORMATS[channel], []
    if spec.title and not title and stand_in:
        notes.append(_note(spec.title, "missing", f"no {spec.title}: the topic stands in, edit it"))
        title = stand_in
    if spec.title and len(title) > spec.title_max:
        notes.append(
            _note(spec.title, "trimmed", f"{len(title)} characters, cut to {spec.title_max}")
        )
        title = trim(title, spec.title_max)
    if spec.title and not title:
        notes.append(_note(spec.title, "missing", f"no {spec.title}: write one before approving"))
    if len(body) > spec.body_max:
        notes.append(_note("body", "trimmed", f"{len(body)} characters, cut to {spec.body_max}"))
        body = trim(body, spec.body_max)
    if not body:
        notes.append(_note("body", "missing", "the draft is empty"))
    return title, body, notes


def _note(field: str, check: str, detail: str) -> dict[str, Any]:
    return {"field": field, "check": check, "detail": detail}


def problems(channel: str, title: str, body: str) -> list[str]:
    """What keeps a draft from being kept as it is (an edit on the board included)."""
    spec, found = FORMATS[channel], []
    if spec.title and not title.strip():
        found.append(f"it needs a {spec.title}")
    if spec.title and len(title) > spec.title_max:
        found.append(f"its {spec.title} has {len(title)} characters, at most {spec.title_max}")
    if not body.strip():
        found.append("its body is empty")
    if len(body) > spec.body_max:
        found.append(f"its body has {len(body)} characters, at most {spec.body_max}")
    return found
