"""The approval policy as an owner builds it: "if this kind of change, and these facts, then
it goes out by itself / waits for a person / is refused", through a form — and each rule read
back in the same words. The rules stay the data approvals/policy.py decides with; the JSON
behind them is still there for operators (the policy page's advanced view)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from approvals.effectors import effector_names, get_effector


@dataclass(frozen=True)
class Fact:
    name: str
    label: str  # what the owner reads in the form and in the rule's words
    choices: tuple[str, ...] = ()  # the values it takes, when it takes few
    number: bool = False


# The facts an owner's rule may test, in the form's order (others: the JSON view).
FACTS = [
    Fact("risk", "the risk", ("low", "medium", "high")),
    Fact("confidence", "the agent's confidence (0 to 1)", number=True),
    Fact("tier", "the writer (template, local or remote model)", ("template", "local", "remote")),
    Fact("intent", "what the customer asks about (e.g. track_order)"),
    Fact("language", "the customer's language (e.g. es)"),
    Fact("checks_failed", "how many checks failed", number=True),
    Fact("price_change_pct", "the price change in %", number=True),
    Fact("price", "the new price", number=True),
    Fact("cost", "the cost price", number=True),
    Fact("agent", "the agent (its short name)"),
]
FACT_BY_NAME = {fact.name: fact for fact in FACTS}
OPS = {
    "==": "is",
    "!=": "is not",
    ">": "is more than",
    ">=": "is at least",
    "<": "is less than",
    "<=": "is at most",
    "in": "is one of",
    "not_in": "is none of",
}
# Then: what the form offers, and the rule it makes.
OUTCOMES = {
    "auto": ("goes out by itself", {"decision": "auto_approve"}),
    "operator": (
        "waits for an operator or the owner",
        {"decision": "require_approval", "required_role": "operator"},
    ),
    "owner": ("waits for the owner", {"decision": "require_approval", "required_role": "owner"}),
    "deny": ("is refused", {"decision": "deny"}),
}
CONDITION_ROWS = 3  # conditions the form offers at once


def kinds() -> list[tuple[str, str]]:
    """(effector glob, what the owner calls it) for the form's "kind of change"."""
    named = [(name, get_effector(name).label or name) for name in effector_names()]
    return [("*", "Any change"), *sorted(named, key=lambda pair: pair[1])]


def rule_from_form(form) -> dict[str, Any]:
    """A rule from the builder's fields: name, effector, fact-N/op-N/value-N, outcome.
    ValidationError says which field is wrong."""
    name = (form.get("name") or "").strip()
    if not name:
        raise ValidationError("a rule needs a name, such as “Small price changes go out”")
    effector = form.get("effector") or "*"
    if effector not in dict(kinds()):
        raise ValidationError(f"unknown kind of change {effector!r}")
    outcome = OUTCOMES.get(form.get("outcome") or "")
    if outcome is None:
        raise ValidationError("choose what happens: out by itself, waits, or refused")
    conditions = [
        condition
        for index in range(1, CONDITION_ROWS + 1)
        if (condition := _condition(form, index)) is not None
    ]
    rule: dict[str, Any] = {"name": name[:120], "effector": effector, **outcome[1]}
    if conditions:
        rule["conditions"] = conditions
    return rule


def _condition(form, index: int) -> dict[str, Any] | None:
    fact_name = form.get(f"fact-{index}") or ""
    if not fact_name:
        return None
    fact = FACT_BY_NAME.get(fact_name)
    op = form.get(f"op-{index}") or ""
    if fact is None or op not in OPS:
        raise ValidationError(f"condition {index}: choose a fact and how it compares")
    text = (form.get(f"value-{index}") or "").strip()
    if not text:
        raise ValidationError(f"condition {index}: {fact.label} {OPS[op]} what?")
    if op in ("in", "not_in"):
        value: Any = [_value(fact, part.strip(), index) for part in text.split(",") if part.strip()]
    else:
        value = _value(fact, text, index)
    return {"fact": fact.name, "op": op, "value": value}


def _value(fact: Fact, text: str, index: int) -> Any:
    if fact.number:
        try:
            number = float(text.replace(",", "."))
        except ValueError as error:
            raise ValidationError(f"condition {index}: {text!r} is not a number") from error
        return int(number) if number.is_integer() else number
    if fact.choices and text not in fact.choices:
        raise ValidationError(
            f"condition {index}: {fact.label} is one of {', '.join(fact.choices)}"
        )
    return text


def rule_words(rule: dict[str, Any]) -> str:
    """ "A reply to a customer, when what wrote it is template and how sure the agent is is at
    least 0.8, goes out by itself"."""
    labels = dict(kinds())
    glob = rule.get("effector", "*")
    prefix = glob.removesuffix(".*")
    family = f"Any change to the {prefix}" if glob.endswith(".*") and "*" not in prefix else ""
    kind = labels.get(glob) or family or f"Any change of the kind {glob}"
    said = [kind if kind != "Any change" else "Any other change"]
    conditions = [_condition_words(c) for c in rule.get("conditions") or []]
    if conditions:
        said.append("when " + " and ".join(conditions))
    return f"{', '.join(said)}, {_outcome_words(rule)}"


def _condition_words(condition: dict[str, Any]) -> str:
    fact = FACT_BY_NAME.get(condition.get("fact", ""))
    label = fact.label.split(" (")[0] if fact else str(condition.get("fact"))
    op = OPS.get(condition.get("op", ""), condition.get("op", ""))
    if "value_fact" in condition:
        other = FACT_BY_NAME.get(condition["value_fact"])
        return f"{label} {op} {other.label if other else condition['value_fact']}"
    value = condition.get("value")
    shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return f"{label} {op} {shown}"


def _outcome_words(rule: dict[str, Any]) -> str:
    decision = rule.get("decision")
    if decision == "auto_approve":
        return "goes out by itself"
    if decision == "deny":
        return "is refused"
    if rule.get("required_role") == "owner":
        return "waits for the owner"
    return "waits for an operator or the owner"
