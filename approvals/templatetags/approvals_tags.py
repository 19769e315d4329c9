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


@register.filter
def source_groups(sources: Any) -> list[dict[str, Any]]:
    """Sources cited per paragraph ({…, "language", "paragraph"}) as one entry per memory
    item, with where it was used ("en ¶1 ¶2, es ¶1"); other sources as they are."""
    groups: dict[Any, dict[str, Any]] = {}
    for source in sources or []:
        parts = memory_source(source)
        key = (parts["namespace"], parts["key"], parts["version"]) if parts else repr(source)
        group = groups.setdefault(key, {"source": source, "memory": parts, "used": {}})
        if isinstance(source, dict) and "paragraph" in source:
            group["used"].setdefault(source.get("language", ""), []).append(source["paragraph"])
    for group in groups.values():
        group["where"] = ", ".join(
            f"{language} " + " ".join(f"¶{n}" for n in numbers)
            if language
            else " ".join(f"¶{n}" for n in numbers)
            for language, numbers in group.pop("used").items()
        )
    return list(groups.values())
