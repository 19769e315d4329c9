"""What the governance API takes and returns."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from ninja import Field, Schema


class AuditOut(Schema):
    seq: int
    created_at: datetime
    actor_kind: str
    actor_label: str
    actor_user_id: int | None
    run_id: int | None
    action: str
    object_type: str
    object_id: str
    object_label: str
    before: Any
    after: Any
    reason: str
    prev_hash: str
    hash: str


class AuditPage(Schema):
    items: list[AuditOut]
    count: int


class BadEntryOut(Schema):
    workspace: int
    seq: int
    problem: str


class VerifyOut(Schema):
    ok: bool
    checked: int
    first_bad: BadEntryOut | None


class ProposalOut(Schema):
    id: int
    agent: str = Field(alias="agent.slug")
    run: int | None = Field(alias="run_id")
    seq: int
    step: str
    effector: str
    target: str
    payload: dict[str, Any]
    payload_hash: str
    proposed_payload: dict[str, Any]
    edited: bool
    diff: list[dict[str, Any]]
    risk: str
    rationale: str
    sources: list[Any]
    facts: dict[str, Any]
    status: str
    decision: str
    decided_rule: dict[str, Any]
    required_role: str
    decided_by: str | None
    decided_at: datetime | None
    reason: str
    reject_category: str
    review_seconds: int | None
    result: Any
    error: str
    commit_attempts: int
    committed_at: datetime | None
    created_at: datetime

    @staticmethod
    def resolve_decided_by(proposal) -> str | None:
        return proposal.decided_by.get_username() if proposal.decided_by else None


class ProposalPage(Schema):
    items: list[ProposalOut]
    count: int


class ApproveIn(Schema):
    payload_hash: str = Field(min_length=64, max_length=64)
    payload: dict[str, Any] | None = None


RejectCategoryIn = Literal["wrong_facts", "off_brand", "not_needed", "too_risky", "other"]


class RejectIn(Schema):
    reason: str = Field(default="", max_length=2000)
    category: RejectCategoryIn = Field(default="other", description="What was wrong with it.")


class BulkItem(Schema):
    id: int
    payload_hash: str = Field(min_length=64, max_length=64)


class ProposalBulkIn(Schema):
    action: Literal["approve", "reject"]
    items: list[BulkItem] = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=2000)
    category: RejectCategoryIn = Field(default="other", description="For rejections.")


class ProposalBulkOut(Schema):
    action: str
    done: list[int]
    skipped: list[dict[str, Any]]


class RulesIn(Schema):
    rules: list[dict[str, Any]]


class RulesOut(Schema):
    rules: list[dict[str, Any]]
    default: bool


class WebhookEndpointIn(Schema):
    url: str = Field(min_length=1, max_length=500)
    secret: str = Field(min_length=16, max_length=200)


class WebhookEndpointOut(Schema):
    name: str
    url: str


# -- outcome metrics ------------------------------------------------------------------------


class OutcomeCostOut(Schema):
    count: int = Field(description="Committed in the period.")
    spend: Decimal = Field(description="All model spend of the runs that made them.")
    per_outcome: Decimal | None


class OutcomeFiguresOut(Schema):
    tasks_completed: int = Field(description="Proposals committed + runs done without one.")
    proposals_committed: int
    runs_without_proposals: int
    automated: int = Field(description="Committed proposals the policy approved.")
    human_approved: int = Field(description="Committed proposals a person approved.")
    automated_share: float | None
    low_risk_automated: int
    low_risk_human_approved: int
    low_risk_automated_share: float | None
    minutes_replaced: float = Field(description="A person's minutes the work replaced.")
    review_minutes: float = Field(description="Minutes people spent reviewing cards.")
    minutes_saved: float = Field(description="minutes_replaced - review_minutes")
    policy_denials: int
    rejections: dict[str, int] = Field(description="People's rejections by category.")
    rejected: int
    failed_checks: int = Field(
        description="Drafts whose checks failed that did not go out as written."
    )
    errors_prevented: int = Field(description="Denied, rejected or caught, each counted once.")
    human_decisions: int
    turnaround_p50_seconds: float | None = Field(description="Proposed → a person's decision.")
    turnaround_p90_seconds: float | None
    cost_per_outcome: dict[str, OutcomeCostOut] = Field(
        description="description (published), message (resolved), post (published)."
    )
    spend: Decimal = Field(description="Model spend in the period.")
    spend_by_tier: dict[str, Decimal]


class OutcomeDayOut(OutcomeFiguresOut):
    day: date


class OutcomeAgentOut(OutcomeFiguresOut):
    agent: str
    name: str


class OutcomesOut(Schema):
    since: date
    until: date
    agent: str | None
    totals: OutcomeFiguresOut
    days: list[OutcomeDayOut]
    agents: list[OutcomeAgentOut]
