"""Agents, their runs, the checkpoint of every step attempt, and the journal of every call."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from pgvector.django import VectorField

from agents.llm.local import EMBEDDING_DIMENSIONS
from aios_site import crypto
from aios_site.accounts.models import Workspace
from aios_site.core.lease import Leased
from aios_site.vectors import cosine_hnsw_index


class Priority(models.TextChoices):
    """Also the Celery queue a run is sent to."""

    INTERACTIVE = "interactive", "Interactive"
    DEFAULT = "default", "Default"
    BULK = "bulk", "Bulk"


# A store webhook topic, e.g. "orders/create" or "inventory_levels/update".
WEBHOOK_TOPIC = r"^[a-z_]{1,50}/[a-z_]{1,50}$"


class Agent(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="agents")
    slug = models.SlugField(max_length=50)
    name = models.CharField(max_length=120)
    pipeline = models.CharField(max_length=100, help_text="A registered pipeline name.")
    enabled = models.BooleanField(default=True)
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.DEFAULT)
    model_policy = models.JSONField(default=dict, blank=True)
    # The prompt versions it writes with (agents/llm/prompts.py); unnamed: the current one.
    prompt_versions = models.JSONField(default=dict, blank=True)
    daily_budget = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    monthly_budget = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    allowed_effectors = models.JSONField(default=list, blank=True)
    webhook_topics = models.JSONField(
        default=list,
        blank=True,
        help_text="Store webhook topics (e.g. orders/create) whose every event starts a run.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="agent_unique_slug"),
        ]

    def __str__(self) -> str:
        return self.name


class Trigger(models.TextChoices):
    MANUAL = "manual"
    WEBHOOK = "webhook"
    SCHEDULE = "schedule"
    REPLAY = "replay"
    FORK = "fork"
    EVAL = "eval"  # an eval's run: proposes nothing (the policy's verdict is recorded instead)


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING)
FINISHED_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class Run(Leased):
    """A run of an agent's pipeline. A worker executes it a slice at a time under the run's
    lease (`Leased`; see agents/services/execution.py `slice_lease`): every write of its
    progress is fenced by the lease's token."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="runs")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    trigger_ref = models.CharField(max_length=200, blank=True)
    # NULL, not "", for "no key": only real keys take part in the unique constraint.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.DEFAULT)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    current_step = models.CharField(max_length=100)
    next_seq = models.PositiveIntegerField(default=1, help_text="Seq of the next step to run.")
    input = models.JSONField(default=dict, blank=True)
    state = models.JSONField(default=dict, blank=True)
    outcome = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    waiting_for = models.JSONField(null=True, blank=True, help_text="What resumes the run.")
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    forked_from = models.ForeignKey(
        "Checkpoint", null=True, blank=True, on_delete=models.SET_NULL, related_name="forks"
    )
    replay_verdict = models.JSONField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True, help_text="Retry backoff.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="run_unique_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "status"]),
            models.Index(fields=["status", "lease_expires_at"]),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.agent_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def progress(self) -> str:
        """How far the run is, as its page says what it showed (`?shown=`): a socket joining
        later compares it with the run's now."""
        return f"{self.status}-{self.next_seq}"


class CheckpointStatus(models.TextChoices):
    RUNNING = "running"
    OK = "ok"
    ERROR = "error"
    WAITING = "waiting"  # stopped before its end to wait (a budget), not a failure
    CANCELLED = "cancelled"


class Checkpoint(models.Model):
    """One attempt of one step. `seq` counts the steps of a run; a retry has the same seq."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="checkpoints")
    seq = models.PositiveIntegerField()
    step = models.CharField(max_length=100)
    attempt = models.PositiveIntegerField(default=1)
    status = models.CharField(
        max_length=16, choices=CheckpointStatus.choices, default=CheckpointStatus.RUNNING
    )
    state_before = models.JSONField(default=dict)
    state_after = models.JSONField(null=True, blank=True)
    transition = models.JSONField(null=True, blank=True)
    resumed_with = models.JSONField(
        null=True, blank=True, help_text="The event that resumed a wait."
    )
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["seq", "attempt"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "seq", "attempt"], name="checkpoint_unique_attempt"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.seq}.{self.attempt} {self.step}"

    @property
    def duration_ms(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds() * 1000


class JournalKind(models.TextChoices):
    MODEL = "model"
    TOOL = "tool"
    MEMORY = "memory"
    CLOCK = "clock"
    RANDOM = "random"
    HTTP = "http"
    PROPOSAL = "proposal"


class JournalEntry(models.Model):
    """One call a step made through its context, written as soon as it returned.

    `position` counts the calls of one step (run, seq); a retried step finds the calls that
    completed before at the same positions and reuses their responses instead of calling again.
    """

    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.CASCADE, related_name="journal")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="journal")
    seq = models.PositiveIntegerField()
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=JournalKind.choices)
    name = models.CharField(max_length=200, blank=True)
    request = models.JSONField(default=dict)
    request_hash = models.CharField(max_length=64)
    response = models.JSONField(null=True, blank=True)
    ok = models.BooleanField(default=True)
    error = models.TextField(blank=True)
    usage = models.JSONField(default=dict, blank=True)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    latency_ms = models.FloatField(default=0)
    pruned = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq", "position", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "seq", "position"],
                condition=Q(ok=True),
                name="journal_unique_completed_call",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name} @{self.seq}.{self.position}"


class ModelPrice(models.Model):
    """What a model costs per million tokens; a workspace's own price overrides the default."""

    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="model_prices"
    )
    model = models.CharField(max_length=200)
    input_per_million = models.DecimalField(max_digits=12, decimal_places=6)
    output_per_million = models.DecimalField(max_digits=12, decimal_places=6)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "model"], name="price_unique_model", nulls_distinct=False
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model}: {self.input_per_million}/{self.output_per_million} per 1M"


class CostEntry(models.Model):
    """The cost ledger: one row for every model call that was made (cache hits included)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="costs")
    agent = models.ForeignKey(Agent, null=True, on_delete=models.SET_NULL, related_name="costs")
    run = models.ForeignKey(Run, null=True, on_delete=models.SET_NULL, related_name="costs")
    seq = models.PositiveIntegerField(null=True)
    step = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=200)
    tier = models.CharField(max_length=16, default="remote")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    latency_ms = models.FloatField(default=0)
    cache_hit = models.BooleanField(default=False)
    # Tokens not reported by the server (a timeout, a cut stream): charged at the bound the
    # reservation held. `note` says why a call that failed was charged at all.
    estimated = models.BooleanField(default=False)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "created_at"])]

    def __str__(self) -> str:
        return f"{self.model} {self.cost} (run {self.run_id})"


class BudgetCounter(models.Model):
    """Spend and open reservations of one scope (agent or workspace) in one period.

    Reservations are conditional updates (`spent + reserved + amount <= cap`), so
    concurrent calls can never together pass a cap.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    agent = models.ForeignKey(Agent, null=True, on_delete=models.CASCADE)
    period = models.CharField(max_length=8)  # "day" or "month"
    period_start = models.DateField()
    spent = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal("0"))
    reserved = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal("0"))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "agent", "period", "period_start"],
                name="budget_counter_unique",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        scope = f"agent {self.agent_id}" if self.agent_id else "workspace"
        return f"{scope} {self.period} from {self.period_start}: {self.spent} + {self.reserved}"


class BudgetReservation(models.Model):
    """One call's hold on its counters, leased: a worker that dies holding it does not keep
    the room for the rest of the period. The next reservation in the workspace releases the
    expired ones; deleting the row is what releases it, so it happens once."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    counter_ids = ArrayField(models.BigIntegerField())
    amount = models.DecimalField(max_digits=14, decimal_places=6)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "expires_at"], name="budget_reservation_expiry")
        ]

    def __str__(self) -> str:
        return f"{self.amount} on {self.counter_ids} until {self.expires_at}"


class Provider(models.Model):
    """An OpenAI-compatible endpoint a workspace adds beside the one in the settings."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="providers")
    name = models.SlugField(max_length=50)
    base_url = models.URLField(max_length=300)
    api_key_encrypted = models.TextField(blank=True)
    model_small = models.CharField(max_length=200, blank=True)
    model_large = models.CharField(max_length=200, blank=True)
    is_default = models.BooleanField(
        default=False, help_text="Used by routes that name no provider, instead of the settings."
    )
    max_concurrency = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        verbose_name="requests at once",
        help_text="How many requests it answers at the same time, from all workers together. "
        "Empty: 1 for a model server on a private address, 16 for a hosted API.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="provider_unique_name"),
            models.UniqueConstraint(
                fields=["workspace"], condition=Q(is_default=True), name="provider_one_default"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.base_url})"

    api_key = crypto.encrypted("api_key_encrypted")


class IntentExample(models.Model):
    """A labelled customer message; a workspace's examples define its intents (local tier)."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="intent_examples"
    )
    intent = models.CharField(max_length=100)
    text = models.TextField()
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    source = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "intent"]),
            cosine_hnsw_index("intent_example_embedding"),
        ]

    def __str__(self) -> str:
        return f"{self.intent}: {self.text[:40]}"


class EvalStatus(models.TextChoices):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class EvalRun(models.Model):
    """One configuration (a provider, or the local tier alone) run over a labelled dataset
    through the real pipeline, proposing and committing nothing; scored per item and in total."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="evals")
    dataset = models.CharField(max_length=100)
    provider = models.CharField(
        max_length=100, blank=True, help_text="Empty: the local tier alone, no remote model."
    )
    label = models.CharField(max_length=200)
    # What else it measures beyond the provider: {"tier_policy": {...}, "prompts": {...}},
    # applied to its runs alone (agents/llm/gateway.py, agents/llm/prompts.py).
    configuration = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=EvalStatus.choices, default="running")
    error = models.TextField(blank=True)
    items = models.PositiveIntegerField(default=0)
    scores = models.JSONField(default=dict, blank=True)
    started_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.dataset} · {self.label}"


class EvalResult(models.Model):
    """What the pipeline did with one item of the dataset, and how that scores."""

    eval_run = models.ForeignKey(EvalRun, on_delete=models.CASCADE, related_name="results")
    item_id = models.CharField(max_length=100)
    run = models.ForeignKey(Run, null=True, on_delete=models.SET_NULL, related_name="+")
    language = models.CharField(max_length=10)
    detected_language = models.CharField(max_length=10, blank=True)
    intent = models.CharField(max_length=100)
    predicted_intent = models.CharField(max_length=100, blank=True)
    confidence = models.FloatField(null=True)
    tier = models.CharField(max_length=16, blank=True)
    draft = models.TextField(blank=True)
    decision = models.CharField(max_length=32, blank=True)
    rule = models.CharField(max_length=300, blank=True)
    facts = models.JSONField(default=dict, blank=True)  # what the policy read: rules re-run on it
    checks_failed = models.JSONField(default=list, blank=True)
    required = models.JSONField(default=list, blank=True)  # facts a good reply states
    missing = models.JSONField(default=list, blank=True)  # of those, the ones it left out
    forbidden = models.JSONField(default=list, blank=True)  # what it must not say, present
    auto_ok = models.BooleanField(default=False)  # the label: may go out without a person
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    latency_ms = models.FloatField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["eval_run", "item_id"], name="eval_result_once")
        ]

    def __str__(self) -> str:
        return f"{self.eval_run_id}:{self.item_id}"

    @property
    def auto_sent(self) -> bool:
        return self.decision == "auto_approve"

    @property
    def right_to_send(self) -> bool:
        """It could have gone out alone: the label says the message may be answered without a
        person, the intent is the labelled one, and the reply states what it must and nothing
        it must not."""
        return (
            self.auto_ok
            and self.predicted_intent == self.intent
            and not self.missing
            and not self.forbidden
        )

    @property
    def auto_right(self) -> bool:
        """Sent by itself, and rightly."""
        return self.auto_sent and self.right_to_send
