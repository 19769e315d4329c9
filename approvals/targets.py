"""Names for what proposals are about.

A proposal's target is a stable reference such as `product:632910392`; a person reads
"Linen shirt". Apps that own a kind of target register how to name a batch of them; the
board names all its cards' targets with one query per kind.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

# kind → (workspace id, references) → {reference: name}
Namer = Callable[[int, list[str]], dict[str, str]]
_NAMERS: dict[str, Namer] = {}


def register_namer(kind: str, namer: Namer) -> None:
    _NAMERS[kind] = namer


def target_names(workspace_id: int, targets: Iterable[str]) -> dict[str, str]:
    """{target: name} for the targets some app knows how to name."""
    by_kind: dict[str, list[str]] = defaultdict(list)
    for target in set(targets):
        kind, _, reference = target.partition(":")
        if reference and kind in _NAMERS:
            by_kind[kind].append(reference)
    names = {}
    for kind, references in by_kind.items():
        for reference, name in _NAMERS[kind](workspace_id, references).items():
            names[f"{kind}:{reference}"] = name
    return names


# kind → (workspace id, reference) → what a person needs beside the card to judge it: a list
# of {"label", "text"?, "url"?, "items"?} sections (a customer's earlier messages, a product's
# page in the catalog), for the board's detail pane.
Context = Callable[[int, str], list[dict]]
_CONTEXTS: dict[str, Context] = {}


def register_context(kind: str, context: Context) -> None:
    _CONTEXTS[kind] = context


def target_context(workspace_id: int, target: str) -> list[dict]:
    kind, _, reference = target.partition(":")
    if not reference or kind not in _CONTEXTS:
        return []
    return _CONTEXTS[kind](workspace_id, reference)
