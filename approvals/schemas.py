"""What the governance API takes and returns."""

from __future__ import annotations

from datetime import datetime
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


class RejectIn(Schema):
    reason: str = Field(default="", max_length=2000)


class BulkItem(Schema):
    id: int
    payload_hash: str = Field(min_length=64, max_length=64)


class ProposalBulkIn(Schema):
    action: Literal["approve", "reject"]
    items: list[BulkItem] = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=2000)


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
