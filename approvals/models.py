"""Governance records. The audit log: one hash chain per workspace, append-only.

Each entry's hash covers its own fields and the previous entry's hash, so editing, removing
or reordering any entry breaks every hash after it (`aios audit verify` finds the first). A
database trigger (see the migration) also refuses UPDATE and DELETE on the table, so a
change needs someone to turn the trigger off first: the chain is what catches them then.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from aios_site import crypto
from aios_site.accounts.models import Workspace
from aios_site.core.lease import Leased


class ActorKind(models.TextChoices):
    USER = "user"
    AGENT = "agent"
    SYSTEM = "system"


class AuditEntry(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="audit")
    seq = models.PositiveBigIntegerField(help_text="1, 2, 3 … within the workspace.")
    created_at = models.DateTimeField()
    actor_kind = models.CharField(max_length=8, choices=ActorKind.choices)
    # Plain ids, not foreign keys: a deleted user or a pruned run must not rewrite history.
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=200, help_text="Who, as it read at the time.")
    run_id = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=200)
    object_label = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-seq"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "seq"], name="audit_unique_seq"),
        ]
        indexes = [
            models.Index(fields=["workspace", "object_type", "object_id"]),
            models.Index(fields=["workspace", "action"]),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"


class AuditSubjectKey(models.Model):
    """The key that seals what the audit log holds about one person (a shop's customer).

    Entries about them store their before/after/reason encrypted under it, and the chain
    hashes the ciphertext; erasing the person deletes this row, which leaves the entries
    unreadable and the chain intact. `subject` is an HMAC of who they are, never the name."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    subject = models.CharField(max_length=64)
    key = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "subject"], name="audit_subject_once"),
        ]

    def __str__(self) -> str:
        return f"audit key {self.subject[:12]}…"


class Risk(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class ProposalStatus(models.TextChoices):
    PENDING = "pending"  # waits for a person
    APPROVED = "approved"  # by a person or a policy; its commit is queued or running
    COMMITTED = "committed"
    FAILED = "failed"  # the commit gave up; nothing was applied
    REJECTED = "rejected"  # by a person, or denied by a policy
    EXPIRED = "expired"
    ROLLED_BACK = "rolled_back"
    WITHDRAWN = "withdrawn"  # its run was cancelled before anyone decided


FINAL_STATUSES = [
    ProposalStatus.COMMITTED,
    ProposalStatus.FAILED,
    ProposalStatus.REJECTED,
    ProposalStatus.EXPIRED,
    ProposalStatus.ROLLED_BACK,
    ProposalStatus.WITHDRAWN,
]


class Decision(models.TextChoices):
    AUTO_APPROVE = "auto_approve"
    REQUIRE_APPROVAL = "require_approval"
    DENY = "deny"


class PolicyRule(models.Model):
    """One rule of a workspace's policy: the first rule whose conditions all hold decides."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=120)
    effector = models.CharField(max_length=100, default="*", help_text="A name or a glob.")
    conditions = models.JSONField(
        default=list, blank=True, help_text='[{"fact": "risk", "op": "in", "value": ["low"]}]'
    )
    decision = models.CharField(max_length=20, choices=Decision.choices)
    required_role = models.CharField(max_length=10, default="operator")

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}"


class RejectCategory(models.TextChoices):
    """Why a person said no: what the metrics count as errors prevented, by kind."""

    WRONG_FACTS = "wrong_facts", "Wrong facts"
    OFF_BRAND = "off_brand", "Off brand"
    NOT_NEEDED = "not_needed", "Not needed"
    TOO_RISKY = "too_risky", "Too risky"
    OTHER = "other", "Other"


class Proposal(Leased):
    """A change an agent wants to make to the outside world, waiting for a decision."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="proposals")
    agent = models.ForeignKey("agents.Agent", on_delete=models.PROTECT, related_name="proposals")
    run = models.ForeignKey(
        "agents.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="proposals"
    )
    seq = models.PositiveIntegerField(help_text="The step of the run that proposed it.")
    step = models.CharField(max_length=100)
    effector = models.CharField(max_length=100)
    target = models.CharField(max_length=300)
    payload = models.JSONField()
    payload_hash = models.CharField(max_length=64)
    proposed_payload = models.JSONField(help_text="As the agent proposed it, before any edit.")
    diff = models.JSONField(default=list)
    risk = models.CharField(max_length=8, choices=Risk.choices)
    rationale = models.TextField(blank=True)
    sources = models.JSONField(default=list, blank=True)
    facts = models.JSONField(default=dict, blank=True, help_text="What the policy looked at.")
    status = models.CharField(
        max_length=12, choices=ProposalStatus.choices, default=ProposalStatus.PENDING
    )
    decision = models.CharField(max_length=20, choices=Decision.choices)
    decided_rule = models.JSONField(default=dict, help_text="The rule that decided, as it was.")
    required_role = models.CharField(max_length=10, default="operator")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)
    reject_category = models.CharField(
        max_length=12, choices=RejectCategory.choices, blank=True, help_text="A person's no."
    )
    review_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="A person's time from opening the card to deciding it, capped; none when "
        "the policy decided or the card was never opened.",
    )
    edited = models.BooleanField(default=False)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    before_image = models.JSONField(
        null=True,
        blank=True,
        help_text="What the target held before the first commit attempt wrote anything: "
        "what undo restores.",
    )
    committed_at = models.DateTimeField(null=True, blank=True)
    delivered = models.BooleanField(default=False, help_text="The run has heard the outcome.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "seq", "effector", "target"], name="proposal_once_per_step"
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "status", "-created_at"]),
            models.Index(fields=["workspace", "agent", "status"]),
            # the outcome metrics read windows of decisions and commits
            models.Index(fields=["workspace", "decided_at"]),
            models.Index(fields=["workspace", "committed_at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.effector} {self.target}"

    @property
    def idempotency_key(self) -> str:
        """Sent with the commit to the outside world; from our id, never from model output."""
        return f"aios-proposal-{self.pk}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def commit_attempts(self) -> int:
        return self.lease_attempts


class Outbox(models.Model):
    """An effect that cannot be asked again whether it happened (a mail handed to SMTP): the
    row is written, and committed, *before* the effect leaves, so a retry or a redelivery
    after a crash knows an earlier attempt handed it over and does not send it twice."""

    proposal = models.ForeignKey(Proposal, on_delete=models.CASCADE, related_name="outbox")
    key = models.CharField(max_length=200, unique=True, help_text="Stable across attempts.")
    handed_at = models.DateTimeField(null=True, blank=True, help_text="Given to the channel.")
    done_at = models.DateTimeField(null=True, blank=True, help_text="The channel took it.")
    result = models.JSONField(null=True, blank=True)

    def __str__(self) -> str:
        return self.key


class ProposalOpened(models.Model):
    """When a member who may decide a proposal was first shown its card: where their review
    starts. Written in bulk as cards render, once per proposal and person."""

    proposal = models.ForeignKey(Proposal, on_delete=models.CASCADE, related_name="openings")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    opened_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["proposal", "user"], name="proposal_opened_once"),
        ]

    def __str__(self) -> str:
        return f"#{self.proposal_id} opened by {self.user_id} at {self.opened_at:%Y-%m-%d %H:%M}"


class WebhookEndpoint(models.Model):
    """Where `core.webhook` may POST for a workspace; its secret signs each body."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="webhooks")
    name = models.SlugField(max_length=50)
    url = models.URLField(max_length=500)
    secret_encrypted = models.TextField()
    # Made by the system for a receiver on this machine (the demo's simulator): its address
    # is private by design. One an owner enters is held to the settings' rule at every send.
    system_made = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="webhook_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} → {self.url}"

    secret = crypto.encrypted("secret_encrypted")
