"""No rule lets out a draft that failed its checks, or a high-risk card (approvals/policy.py)."""

import pytest

from approvals import policy

SEND_ALL = [
    {"name": "Send every reply", "effector": "catalog.send_reply", "decision": "auto_approve"}
]
REPLY = {"effector": "catalog.send_reply", "risk": "low", "checks_failed": 0}


def test_a_rule_that_matches_a_clean_low_risk_reply_approves_it():
    assert policy.decide(SEND_ALL, REPLY).decision == "auto_approve"


@pytest.mark.parametrize(
    "facts, why",
    [
        ({"checks_failed": 1}, "its draft failed a check"),
        ({"failed_drafts": 2}, "the model's drafts failed their checks"),
        ({"risk": "high", "risk_reasons": ["the customer asks for money back"]}, "money back"),
    ],
)
def test_an_auto_approval_of_a_failed_or_risky_draft_becomes_a_persons_decision(facts, why):
    verdict = policy.decide(SEND_ALL, {**REPLY, **facts})
    assert verdict.decision == "require_approval"
    assert why in verdict.rule["name"] and verdict.rule["overridden"] == "Send every reply"


def test_the_gate_never_softens_a_deny():
    deny = [{"name": "No replies", "effector": "*", "decision": "deny"}]
    assert policy.decide(deny, {**REPLY, "checks_failed": 3}).decision == "deny"
