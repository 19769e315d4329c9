from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from ninja import Field, Schema

from agents.models import WEBHOOK_TOPIC

PriorityName = Literal["interactive", "default", "bulk"]
Topic = Annotated[str, Field(pattern=WEBHOOK_TOPIC)]
Topics = Annotated[list[Topic], Field(max_length=20)]


class AgentIn(Schema):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,49}$")
    name: str = Field(min_length=1, max_length=120)
    pipeline: str
    enabled: bool = True
    priority: PriorityName = "default"
    model_policy: dict[str, Any] = {}
    prompt_versions: dict[str, str] = {}
    daily_budget: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=4)
    monthly_budget: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=4)
    allowed_effectors: list[str] = []
    webhook_topics: Topics = []


class AgentPatch(Schema):
    """What is left out stays as it is. Only a budget may be null (no cap): a null name or
    pipeline is refused (422), not stored."""

    name: str = Field(default=None, min_length=1, max_length=120)
    pipeline: str = None
    enabled: bool = None
    priority: PriorityName = None
    model_policy: dict[str, Any] = None
    prompt_versions: dict[str, str] = None
    daily_budget: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=4)
    monthly_budget: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=4)
    allowed_effectors: list[str] = None
    webhook_topics: Topics = None


class AgentOut(Schema):
    slug: str
    name: str
    pipeline: str
    enabled: bool
    priority: str
    model_policy: dict[str, Any]
    prompt_versions: dict[str, str]
    daily_budget: Decimal | None
    monthly_budget: Decimal | None
    allowed_effectors: list[str]
    webhook_topics: list[str]


class RunIn(Schema):
    agent: str
    input: dict[str, Any] = {}
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    priority: PriorityName | None = None


class RunOut(Schema):
    id: int
    agent: str = Field(alias="agent.slug")
    trigger: str
    trigger_ref: str
    status: str
    priority: str
    current_step: str
    input: dict[str, Any]
    state: dict[str, Any]
    outcome: Any = None
    error: str
    waiting_for: dict[str, Any] | None
    cost: Decimal
    parent: int | None = Field(alias="parent_id")
    forked_from_seq: int | None
    replay_verdict: Any = None
    idempotency_key: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @staticmethod
    def resolve_forked_from_seq(run) -> int | None:
        return run.forked_from.seq if run.forked_from_id else None


class JournalOut(Schema):
    position: int
    kind: str
    name: str
    ok: bool
    error: str
    latency_ms: float
    usage: dict[str, Any]
    cost: Decimal


class CheckpointOut(Schema):
    seq: int
    step: str
    attempt: int
    status: str
    error: str
    started_at: datetime
    finished_at: datetime | None
    duration_ms: float | None
    transition: dict[str, Any] | None
    journal_summary: dict[str, Any]
    journal: list[JournalOut]


class RunDetailOut(RunOut):
    checkpoints: list[CheckpointOut] = Field(alias="checkpoint_rows")


class AnswerIn(Schema):
    answer: Any = Field(description="Any JSON value; it lands in the run's state.")


class ForkIn(Schema):
    from_seq: int = Field(ge=1)
    state_patch: dict[str, Any] = {}


class CostOut(Schema):
    key: str = Field(description="The agent's slug, the model, the day (YYYY-MM-DD) or tier.")
    calls: int
    cache_hits: int
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    latency_ms: float | None = Field(description="Mean latency of the calls.")


# -- models: providers, prices, tier policy, intents --------------------------------------------


class PriceIn(Schema):
    model: str = Field(min_length=1, max_length=200)
    input_per_million: Decimal = Field(ge=0, max_digits=12, decimal_places=6)
    output_per_million: Decimal = Field(ge=0, max_digits=12, decimal_places=6)


class PriceOut(Schema):
    model: str
    input_per_million: Decimal
    output_per_million: Decimal
    scope: str = Field(description="'workspace' (its own price) or 'default'.")


class ProviderIn(Schema):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,49}$")
    base_url: str = Field(pattern=r"^https?://", max_length=300)
    api_key: str | None = Field(
        default=None, max_length=500, description="Stored encrypted; omit to keep the stored key."
    )
    model_small: str = Field(default="", max_length=200)
    model_large: str = Field(default="", max_length=200)
    is_default: bool = False
    max_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Requests it answers at once, from all workers together; omitted: 1 for a "
        "server on a private address, 16 for a hosted API.",
    )
    prices: list[PriceIn] = []


class ProviderOut(Schema):
    name: str
    base_url: str
    model_small: str
    model_large: str
    is_default: bool
    max_concurrency: int = Field(description="Requests it answers at once (the default if unset).")
    endpoint: dict[str, Any] = Field(
        description="Its state now: 'up', 'failing' or 'unreachable' (since when, the last "
        "error), the last latency in ms, calls in flight and waiting."
    )
    api_key: str = Field(description="Only a hint (last four characters), never the key.")


class RouteOut(Schema):
    capability: str
    description: str
    route: dict[str, Any]
    tier: str = Field(description="The tier that will serve it now ('' if none can).")
    model: str
    ready: bool
    note: str


class PolicyOut(Schema):
    policy: dict[str, Any]
    routes: list[RouteOut]


class PolicyIn(Schema):
    policy: dict[str, Any]


class IntentExampleIn(Schema):
    text: str = Field(min_length=1, max_length=2000)
    intent: str = Field(pattern=r"^[a-z0-9_]{1,100}$")


class IntentExamplesIn(Schema):
    examples: list[IntentExampleIn] = Field(min_length=1, max_length=5000)


class IntentOut(Schema):
    intent: str
    examples: int
