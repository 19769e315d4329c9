"""Charts drawn on the server: the geometry of bars for inline SVG.

Every number that lands in an SVG attribute is formatted here as a plain string, so a
page rendered in a language with a decimal comma still draws; labels are dates and tier
names, and the template escapes them like everything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

WIDTH, HEIGHT, TOP = 720, 160, 6  # the drawing, and the room kept above the tallest bar
GAP = 0.15  # of a slot, on each side of its bar


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _plain(value: float | Decimal) -> str:
    return format(value.normalize(), "f") if isinstance(value, Decimal) else _n(value)


def _slot(index: int, count: int) -> tuple[str, str]:
    """x and width of bar `index` of `count` across the width."""
    slot = WIDTH / max(count, 1)
    return _n(index * slot + slot * GAP), _n(slot * (1 - 2 * GAP))


def bar_chart(points: Sequence[tuple[Any, float | None]], *, top: float = 0.0) -> dict[str, Any]:
    """One bar per point from a zero line (negative values hang below it), scaled to the
    highest value or `top` if higher; a point without a value (None) or at zero draws no bar."""
    values = [value for _, value in points if value is not None]
    high, low = max([top, *values]), min([0.0, *values])
    span = (high - low) or 1.0

    def y(value: float) -> float:
        return TOP + (high - value) / span * (HEIGHT - TOP)

    bars = []
    for index, (label, value) in enumerate(points):
        if not value:
            continue
        x, width = _slot(index, len(points))
        top, bottom = sorted((y(value), y(0.0)))
        bars.append(
            {
                "label": str(label),
                "value": _plain(value),
                "x": x,
                "y": _n(top),
                "width": width,
                "height": _n(bottom - top),
                "negative": value < 0,
            }
        )
    labels = [label for label, _ in points]
    return _frame(labels, bars, high=_plain(high), zero=_n(y(0.0)))


def stacked_chart(
    labels: Sequence[Any], series: dict[str, Sequence[float | Decimal]]
) -> dict[str, Any]:
    """One column per label, its segments (one per series, in order) stacked from the
    bottom; empty columns draw nothing."""
    totals = [
        sum((values[i] for values in series.values()), Decimal(0)) for i in range(len(labels))
    ]
    high = max(totals, default=Decimal(0)) or Decimal(1)
    columns = []
    for index, label in enumerate(labels):
        x, width = _slot(index, len(labels))
        bottom, segments = float(HEIGHT), []
        for name, values in series.items():
            if not values[index]:
                continue
            height = float(values[index]) / float(high) * (HEIGHT - TOP)
            bottom -= height
            segments.append(
                {
                    "name": name,
                    "value": _plain(values[index]),
                    "x": x,
                    "y": _n(bottom),
                    "width": width,
                    "height": _n(height),
                }
            )
        if segments:
            columns.append(
                {"label": str(label), "total": _plain(totals[index]), "segments": segments}
            )
    return _frame(labels, columns, high=_plain(high), zero=_n(HEIGHT), legend=list(series))


def _frame(labels: Sequence[Any], marks: list[dict], **more: Any) -> dict[str, Any]:
    """What every chart has: its size, its marks, and the labels at either end."""
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "marks": marks,
        "first": str(labels[0]) if labels else "",
        "last": str(labels[-1]) if labels else "",
        **more,
    }


def outcome_charts(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The metrics page's charts: minutes saved, model spend by tier and the share the
    policy approved by itself, per day."""
    days = metrics["days"]
    tiers = sorted({tier for day in days for tier in day["spend_by_tier"]})
    return {
        "minutes": bar_chart([(day["day"], day["minutes_saved"]) for day in days]),
        "spend": stacked_chart(
            [day["day"] for day in days],
            {tier: [day["spend_by_tier"].get(tier, Decimal(0)) for day in days] for tier in tiers},
        ),
        "automated": bar_chart(
            [
                (
                    day["day"],
                    None if day["automated_share"] is None else day["automated_share"] * 100,
                )
                for day in days
            ],
            top=100,
        ),
    }
