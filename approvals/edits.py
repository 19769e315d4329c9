"""What a person may change on a card, and nothing else.

An effector names the parts of its payload a person is meant to edit (`Effector.edits`): a
reply's text, a description per language, a price, a post's text and time. Each is an
`Edit`: where it sits in the payload, how it is edited (a textarea, a rich-text editor, a
money input, a date and time) and what the owner calls it. Everything else in a payload —
the message it answers, the product or variant it writes to, its checks — is fixed by the
agent's run: an edit that touches it is refused (`refuse_locked`), through the board and the
API alike, because changing `message_id` would send one customer's reply to another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from aios_site.core.errors import PermanentError

# How each kind is edited on the card.
KINDS = ("text", "line", "html", "money", "datetime", "json")


@dataclass(frozen=True)
class Edit:
    """One part of a payload a person may change."""

    path: tuple[str, ...]  # where it sits in the payload: ("body",), ("descriptions", "es")
    kind: str  # one of KINDS
    label: str  # what the owner calls it: "Reply", "Description in Spanish", "Price"
    value: Any = None
    currency: str = ""  # for money

    @property
    def name(self) -> str:
        """The form field's name on the card."""
        return "edit:" + "/".join(self.path)


def _with(payload: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of `payload` with `value` at `path` (copying the dicts on the way)."""
    head, *rest = path
    inner = payload.get(head) if isinstance(payload.get(head), dict) else {}
    return {**payload, head: _with(inner, tuple(rest), value) if rest else value}


def _leaves(value: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(value, dict) and value:
        found: dict[tuple[str, ...], Any] = {}
        for key, inner in value.items():
            found |= _leaves(inner, (*path, str(key)))
        return found
    return {path: value}


def changed_paths(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, ...]]:
    """Every place where `new` differs from `old`: changed, added or removed."""
    before, after = _leaves(old), _leaves(new)
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def refuse_locked(edits: list[Edit], old: dict[str, Any], new: dict[str, Any]) -> None:
    """PermanentError (400) naming what was changed that a person may not change. What they
    may change they may not take away (a description's language stays on the card)."""
    allowed = {edit.path for edit in edits}
    before, after = _leaves(old), _leaves(new)
    locked = [
        path
        for path in changed_paths(old, new)
        if not any(path[: len(a)] == a for a in allowed)  # a JSON field covers what it holds
        or (path in allowed and path in before and path not in after)
    ]
    if not locked:
        return
    names = ", ".join(".".join(path) for path in locked)
    may = ", ".join(edit.label.lower() for edit in edits) or "nothing"
    raise PermanentError(
        f"an edit may change only what a person writes here ({may}); "
        f"{names} cannot be changed: reject the card instead"
    )


def edited_payload(
    payload: dict[str, Any], edits: list[Edit], given: dict[str, str], *, tz: ZoneInfo | None
) -> dict[str, Any]:
    """`payload` with the card's form fields (`given`, by `Edit.name`) in place: only the
    fields the card offers are read, each parsed by its kind, and only those the person
    changed from what the card showed them are written (an untouched default subject is not
    an edit)."""
    edited = payload
    for edit in edits:
        if edit.name not in given:
            continue
        text = given[edit.name].replace("\r\n", "\n")
        if text.strip() != _shown(edit, tz).strip():
            edited = _with(edited, edit.path, _parse(edit, text, tz=tz))
    return edited


def _shown(edit: Edit, tz: ZoneInfo | None) -> str:
    """The edit's value as the card's field showed it."""
    if edit.kind == "datetime":
        return local_input(edit.value, tz=tz)
    if edit.kind == "json":
        return json.dumps(edit.value, ensure_ascii=False, sort_keys=True, default=str)
    return "" if edit.value is None else str(edit.value)


def _parse(edit: Edit, text: str, *, tz: ZoneInfo | None) -> Any:
    """The field's text (line breaks already normalized) as the value its kind holds."""
    if edit.kind == "money":
        return _money(edit, text)
    if edit.kind == "datetime":
        return _moment(edit, text, tz=tz)
    if edit.kind == "line":
        return text.strip()
    if edit.kind == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise PermanentError(f"{edit.label}: not JSON ({error.msg})") from error
    return text


def _money(edit: Edit, text: str) -> str:
    cleaned = text.strip().replace(" ", "").replace(",", ".")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation as error:
        raise PermanentError(f"{edit.label}: {text!r} is not an amount") from error
    if not amount.is_finite() or amount < 0:
        raise PermanentError(f"{edit.label}: an amount is a number, 0 or more")
    return str(amount.quantize(Decimal("0.01")))


def _moment(edit: Edit, text: str, *, tz: ZoneInfo | None) -> str:
    """A `datetime-local` value (the member's own clock) as an ISO time with its offset."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise PermanentError(f"{edit.label}: {text!r} is not a date and time") from error
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, tz or timezone.get_current_timezone())
    return moment.isoformat()


def local_input(value: str | None, *, tz: ZoneInfo | None = None) -> str:
    """An ISO time as a `datetime-local` input shows it, on the member's clock."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return ""
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment, tz or timezone.get_current_timezone())
    return moment.strftime("%Y-%m-%dT%H:%M")
