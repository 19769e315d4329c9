from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()


@register.filter
def pretty_json(value: Any) -> str:
    """JSON for people to read; the template's autoescaping still applies to it."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


@register.filter
def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@register.filter
def as_words(value: Any) -> str:
    """A label such as an intent name as words: "track_order" → "track order"."""
    return str(value or "").replace("_", " ")
