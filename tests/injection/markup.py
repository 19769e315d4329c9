"""Reads a rendered page (or a websocket frame) the way a browser would and names every piece
of markup in it that an attacker could have put there: a tag that runs or loads something,
an event handler, a `javascript:`/`data:` URL, or any attribute (other than a text one,
such as a title) or script carrying the payloads' marker. Escaped text is only text to the
parser, so it is never named."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from tests.injection.payloads import MARKER

# Tags no page of ours uses, that load or run something when they appear.
FOREIGN_TAGS = {
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "img",
    "math",
    "base",
    "video",
    "audio",
    "marquee",
}
# Attributes whose value is text a person reads (escaped there, as in any text).
TEXT_ATTRIBUTES = {"title", "aria-label", "alt", "value", "placeholder", "label", "data-confirm"}
# Our own event handlers, exactly as the templates write them.
OWN_HANDLERS = {"this.form.submit()", "return confirm(this.dataset.confirm)"}
URL_ATTRIBUTES = {
    "href",
    "src",
    "action",
    "formaction",
    "data",
    "poster",
    "background",
    "xlink:href",
    "hx-get",
    "hx-post",
    "hx-put",
    "hx-patch",
    "hx-delete",
    "ws-connect",
}
ACTIVE_SCHEMES = ("javascript:", "vbscript:", "data:")
INVISIBLE = re.compile(r"[\x00-\x20\u200b-\u200f\u2060\ufeff]")


class _Scanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.unsafe: list[str] = []
        self.text: list[str] = []
        self._raw: str | None = None  # inside <script> or <style>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, attrs)
        if tag in ("script", "style"):
            self._raw = tag

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == self._raw:
            self._raw = None

    def handle_data(self, data: str) -> None:
        if self._raw and (MARKER in data.lower() or data.strip()):
            self.unsafe.append(f"<{self._raw}> with content {data.strip()[:80]!r}")
        elif not self._raw:
            self.text.append(data)

    def _tag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in FOREIGN_TAGS:
            self.unsafe.append(f"<{tag}> element")
        if tag == "meta" and any(name == "http-equiv" for name, _ in attrs):
            self.unsafe.append("<meta http-equiv> element")
        for name, value in attrs:
            value = value or ""
            if MARKER in name.lower() or (MARKER in value.lower() and name not in TEXT_ATTRIBUTES):
                self.unsafe.append(f"<{tag} {name}={value[:80]!r}> carries the marker")
            if name.startswith("on") and value not in OWN_HANDLERS:
                self.unsafe.append(f"<{tag} {name}={value[:80]!r}> event handler")
            if name in URL_ATTRIBUTES and INVISIBLE.sub("", value).lower().startswith(
                ACTIVE_SCHEMES
            ):
                self.unsafe.append(f"<{tag} {name}={value[:80]!r}> active URL")


def scan(markup: str) -> tuple[list[str], str]:
    """What in the markup is live and attacker-made, and the markup's text as a reader sees it."""
    scanner = _Scanner()
    scanner.feed(markup)
    scanner.close()
    return scanner.unsafe, "".join(scanner.text)


def unsafe_parts(markup: str) -> list[str]:
    return scan(markup)[0]


def visible_text(markup: str) -> str:
    return scan(markup)[1]
