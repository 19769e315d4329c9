"""The policy engine: a workspace's ordered rules decide each proposal as it is made.

A rule is data: an effector name or glob, conditions over facts, and a decision
(`auto_approve`, `require_approval` with a minimum role, or `deny`). The first rule whose
effector matches and whose conditions all hold decides; a condition on a fact the proposal
does not have does not hold. Facts: `effector`, `risk`, `agent`, what the effector reports
(`price_change_pct`, `price`, `cost`, `intent`, `tier`, `confidence`, `checks_failed` …) and
`payload.<field>` for the payload's plain values. A workspace without rules of its own uses
DEFAULT_RULES. No rule auto-approves a draft that failed a check, a high-risk card or a
customer's complaint: those always wait for a person (`unreviewable`).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from agents.llm.intents import CONFIDENT
from aios_site.accounts.models import Role

OPERATORS = {
    "==": lambda fact, value: fact == value,
    "!=": lambda fact, value: fact != value,
    ">": lambda fact, value: fact > value,
    ">=": lambda fact, value: fact >= value,
    "<": lambda fact, value: fact < value,
    "<=": lambda fact, value: fact <= value,
    "in": lambda fact, value: fact in value,
    "not_in": lambda fact, value: fact not in value,
}
DECISIONS = ("auto_approve", "require_approval", "deny")
ROLES = (Role.OPERATOR, Role.OWNER)

DEFAULT_RULES: list[dict[str, Any]] = [
    {
        "name": "Never sell below cost",
        "effector": "catalog.*",
        "conditions": [{"fact": "price", "op": "<", "value_fact": "cost"}],
        "decision": "deny",
    },
    {
        "name": "Price changes over 5% need the owner",
        "effector": "catalog.change_price",
        "conditions": [{"fact": "price_change_pct", "op": ">", "value": 5}],
        "decision": "require_approval",
        "required_role": "owner",
    },
    {
        "name": "Templated order-status replies go out by themselves",
        "effector": "catalog.send_reply",
        "conditions": [
            {"fact": "tier", "op": "==", "value": "template"},
            {"fact": "intent", "op": "in", "value": ["track_order", "delivery_period"]},
            # The calibrated threshold (bench/calibration.py): below it a wrong template
            # would go out to a customer too often.
            {"fact": "confidence", "op": ">=", "value": CONFIDENT},
        ],
        "decision": "auto_approve",
    },
    {
        "name": "Notes in memory are low risk",
        "effector": "core.note",
        "conditions": [{"fact": "risk", "op": "==", "value": "low"}],
        "decision": "auto_approve",
    },
    {"name": "Everything else waits for a person", "effector": "*", "decision": "require_approval"},
]


@dataclass(frozen=True)
class Verdict:
    decision: str
    required_role: str
    rule: dict[str, Any]


def decide(rules: list[dict[str, Any]], facts: dict[str, Any]) -> Verdict:
    for position, rule in enumerate(rules, start=1):
        if fnmatch.fnmatchcase(facts["effector"], rule.get("effector", "*")) and all(
            _holds(condition, facts) for condition in rule.get("conditions", [])
        ):
            verdict = Verdict(
                rule["decision"],
                rule.get("required_role", Role.OPERATOR),
                {"position": position, **rule},
            )
            return _gated(verdict, facts)
    fallback = {"name": "No rule matched: a person decides", "position": None}
    return Verdict("require_approval", Role.OPERATOR, fallback)


def unreviewable(facts: dict[str, Any]) -> str | None:
    """Why a proposal may not go out without a person, whatever a rule says: a draft that
    failed one of its checks (or stands in for drafts that did), a high-risk card (a threat, a
    refund demand, money, an attempt to instruct the agent), or a customer's complaint. None
    when nothing stands in the way."""
    if facts.get("checks_failed"):
        return "its draft failed a check"
    if facts.get("failed_drafts"):
        return "the model's drafts failed their checks, and what stands in was not asked for"
    reasons = facts.get("risk_reasons") or []
    # A complaint is medium risk, but the customer's words are why a person must answer it.
    if facts.get("risk") == "high" or (reasons and facts.get("risk") == "medium"):
        return f"it is {facts['risk']} risk" + (f" ({'; '.join(reasons)})" if reasons else "")
    return None


def _gated(verdict: Verdict, facts: dict[str, Any]) -> Verdict:
    """An auto-approval the gate refuses becomes a person's decision, naming the rule it
    overrode so the card says why the rule did not apply."""
    why = unreviewable(facts) if verdict.decision == "auto_approve" else None
    if why is None:
        return verdict
    rule = {
        "name": f"Waits for a person: {why}",
        "position": None,
        "overridden": verdict.rule.get("name"),
    }
    return Verdict("require_approval", Role.OPERATOR, rule)


def _holds(condition: dict[str, Any], facts: dict[str, Any]) -> bool:
    if condition["fact"] not in facts:
        return False
    if "value_fact" in condition:
        if condition["value_fact"] not in facts:
            return False
        value = facts[condition["value_fact"]]
    else:
        value = condition.get("value")
    try:
        return bool(OPERATORS[condition["op"]](facts[condition["fact"]], value))
    except TypeError:  # comparing a number with a string, say: the condition does not hold
        return False


def rules_validate(rules: Any) -> list[dict[str, Any]]:
    """The rules as stored, or a ValidationError naming the first problem."""
    if not isinstance(rules, list):
        raise ValidationError("rules must be a list")
    return [_rule_validate(number, rule) for number, rule in enumerate(rules, start=1)]


def _rule_validate(number: int, rule: Any) -> dict[str, Any]:
    where = f"rule {number}"
    if not isinstance(rule, dict) or not str(rule.get("name", "")).strip():
        raise ValidationError(f"{where}: needs a name")
    if rule.get("decision") not in DECISIONS:
        raise ValidationError(f"{where}: decision must be one of {', '.join(DECISIONS)}")
    role = rule.get("required_role", Role.OPERATOR)
    if role not in ROLES:
        raise ValidationError(f"{where}: required_role must be operator or owner")
    conditions = rule.get("conditions", [])
    if not isinstance(conditions, list):
        raise ValidationError(f"{where}: conditions must be a list")
    for condition in conditions:
        if not isinstance(condition, dict) or not isinstance(condition.get("fact"), str):
            raise ValidationError(f"{where}: each condition needs a fact")
        if condition.get("op") not in OPERATORS:
            raise ValidationError(f"{where}: op must be one of {' '.join(OPERATORS)}")
        if "value" not in condition and "value_fact" not in condition:
            raise ValidationError(f"{where}: a condition needs a value or a value_fact")
    clean = {
        "name": str(rule["name"]).strip()[:120],
        "effector": str(rule.get("effector") or "*")[:100],
        "conditions": conditions,
        "decision": rule["decision"],
    }
    if rule["decision"] == "require_approval":
        clean["required_role"] = role
    return clean
