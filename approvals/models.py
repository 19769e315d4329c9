"""Governance records. The audit log: one hash chain per workspace, append-only.

Each entry's hash covers its own fields and the previous entry's hash, so editing, removing
or reordering any entry breaks every hash after it (`aios audit verify` finds the first). A
database trigger (see the migration) also refuses UPDATE and DELETE on the table, so a
change needs someone to turn the trigger off first: the chain is what catches them then.
"""

from __future__ import annotations

from django.db import models

from aios_site.accounts.models import Workspace


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
