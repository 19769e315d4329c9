from __future__ import annotations

import re
from typing import Any

from django import template

register = template.Library()

MEMORY_SOURCE = re.compile(
    r"^(?P<namespace>[a-z0-9][a-z0-9_-]*)/(?P<key>[^/@]+)(@(?P<version>\d+))?$"
)


@register.filter
def memory_source(source: Any) -> dict[str, str] | None:
    """ "policies/returns@2" (or {"namespace", "key", "version"}) as its parts; else None."""
    if isinstance(source, dict) and {"namespace", "key"} <= set(source):
        return {k: str(source.get(k, "")) for k in ("namespace", "key", "version")}
    if isinstance(source, str) and (match := MEMORY_SOURCE.match(source)):
        return {k: v or "" for k, v in match.groupdict().items()}
    return None
