"""Markup from shops, models and web pages is parsed in linear time: a crafted page or
description cannot keep a worker (and its GIL) busy for minutes. The regular expressions and
html.parser this replaced took 12 to 110 s on each of these 200 kB inputs; the time limit is
a hundred times what the parser needs, a guard against going back, not a benchmark."""

from __future__ import annotations

import re

import pytest

from catalog import html
from catalog.content.pipeline import page_text

CRAFTED = {
    "unclosed scripts": "<script " * 25_000,
    "lone brackets": "<" * 200_000 + "a",
    "unclosed paragraphs": "<p" * 100_000,
    "unclosed comments": "<!--" * 50_000,
    "unclosed attributes": "<a b='" * 30_000,
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("markup", CRAFTED.values(), ids=CRAFTED.keys())
def test_crafted_markup_is_read_and_cleaned_without_backtracking(markup):
    cleaned = html.sanitize(markup)
    text = html.visible_text(markup)
    page = page_text(markup)

    tags = re.findall(r"<[^<>]*>", cleaned)  # on the cleaned output only: short, bare tags
    assert set(tags) <= {f"<{t}>" for t in html.ALLOWED_TAGS} | {
        f"</{t}>" for t in html.ALLOWED_TAGS
    }
    assert cleaned.count("<") == len(tags)  # any other "<" came back escaped, as text
    assert len(text) <= len(markup) and len(page) <= len(markup)


def test_sanitizing_keeps_structure_and_drops_everything_active():
    markup = (
        '<p onclick="x()">Soft <b>linen</b> shirt <script>steal()</script>'
        '<a href="javascript:x">link</a> 1 < 2 & 3<ul><li>one<li>two</ul><!-- note -->'
    )

    assert html.sanitize(markup) == (
        "<p>Soft <b>linen</b> shirt link 1 &lt; 2 &amp; 3</p><ul><li>one</li><li>two</li></ul>"
    )
    assert html.visible_text(markup) == "Soft linen shirt link 1 < 2 & 3\none\ntwo"
