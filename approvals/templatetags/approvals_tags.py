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


@register.simple_tag
def reject_categories() -> list[tuple[str, str]]:
    """Why a card may be rejected, for the reject form's select."""
    from approvals.models import RejectCategory

    return RejectCategory.choices


NONE = "\u2014"  # an em dash: nothing to show


@register.filter
def reject_label(category: str) -> str:
    """wrong_facts as "Wrong facts"."""
    from approvals.models import RejectCategory

    return RejectCategory(category).label if category in RejectCategory.values else category


@register.filter
def percent(fraction: float | None) -> str:
    """0.6667 as "67 %"; nothing to share as a dash."""
    return NONE if fraction is None else f"{fraction * 100:.0f} %"


@register.filter
def minutes(value: float | None) -> str:
    """Minutes as a person reads them: "45 min", "12 h 30 min", "-10 min"."""
    if value is None:
        return NONE
    sign, total = ("-" if value < 0 else ""), round(abs(value))
    hours, rest = divmod(total, 60)
    if not hours:
        return f"{sign}{rest} min"
    return f"{sign}{hours} h" + (f" {rest} min" if rest else "")


@register.filter
def seconds(value: float | None) -> str:
    """A duration in seconds as "40 s", "3 min 20 s", "2 h 5 min", "3 d 4 h"."""
    if value is None:
        return NONE
    total = round(value)
    for unit, size, smaller, smaller_size in (
        ("d", 86400, "h", 3600),
        ("h", 3600, "min", 60),
        ("min", 60, "s", 1),
    ):
        if total >= size:
            whole, rest = divmod(total, size)
            rest //= smaller_size
            return f"{whole} {unit}" + (f" {rest} {smaller}" if rest else "")
    return f"{total} s"
