"""Product descriptions are HTML that goes into a shop: read as text, cleaned before writing.

`sanitize` keeps the few structural tags a description needs and nothing else: no
attributes (so no `onclick`, `style` or `href="javascript:"`), no scripts, every text
escaped. Whatever a model wrote, what reaches the shop is inert.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

ALLOWED_TAGS = {"p", "br", "ul", "ol", "li", "strong", "em", "b", "i", "h2", "h3", "h4"}
VOID_TAGS = {"br"}
DROPPED_WITH_CONTENT = {"script", "style", "iframe", "object", "template", "noscript"}
BLOCK_TAGS = {"p", "li", "h2", "h3", "h4", "div", "br", "tr", "section", "article"}
BLOCK_TAG = re.compile(r"<\s*/?\s*(" + "|".join(sorted(BLOCK_TAGS)) + r")\b[^>]*>", re.I)


class _Sanitizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self.skipping += 1
        elif not self.skipping and tag in ALLOWED_TAGS:
            self.out.append(f"<{tag}>")
            if tag not in VOID_TAGS:
                self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self.skipping = max(0, self.skipping - 1)
        elif not self.skipping and tag in self.open:
            while self.open:  # close what was left open inside it
                last = self.open.pop()
                self.out.append(f"</{last}>")
                if last == tag:
                    break

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(html.escape(data, quote=False))

    def result(self) -> str:
        self.close()
        return "".join(self.out + [f"</{tag}>" for tag in reversed(self.open)])


def sanitize(markup: str) -> str:
    """Only ALLOWED_TAGS, without attributes; text escaped; tags balanced."""
    parser = _Sanitizer()
    parser.feed(markup or "")
    return parser.result().strip()


def visible_text(markup: str) -> str:
    """The words a shopper reads, one line per block."""
    spaced = BLOCK_TAG.sub("\n", markup or "")
    text = html.unescape(re.sub(r"<[^>]+>", " ", spaced))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def paragraphs(markup: str) -> list[str]:
    return visible_text(markup).split("\n") if markup else []


def from_text(text: str) -> str:
    """Plain text (paragraphs separated by blank lines) as description HTML."""
    blocks = [" ".join(block.split()) for block in re.split(r"\n\s*\n", text.strip())]
    return "".join(f"<p>{html.escape(block, quote=False)}</p>" for block in blocks if block)


def word_count(markup: str) -> int:
    return len(visible_text(markup).split())
