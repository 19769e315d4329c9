"""Canonical memory: versioned facts and notes of a workspace, searchable by meaning and text.

A (workspace, namespace, key) names one piece of knowledge across its versions. Facts are
immutable: a change is version n+1, and version n's validity ends where n+1's begins, so
"what did we know at time T" is a plain validity filter. Notes are working memory: edited in
place (every edit kept in MemoryEdit) and expiring at valid_until.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from pgvector.django import VectorField

from agents.llm.local import EMBEDDING_DIMENSIONS
from aios_site.accounts.models import Workspace
from aios_site.core.lease import Leased
from aios_site.vectors import cosine_hnsw_index


class Kind(models.TextChoices):
    FACT = "fact"
    NOTE = "note"


class Status(models.TextChoices):
    CURRENT = "current"  # valid in its window
    NEEDS_REVIEW = "needs_review"  # contradicts the current fact; a person decides
    REJECTED = "rejected"  # a reviewed contradiction that was turned down


class SourceKind(models.TextChoices):
    HUMAN = "human"
    IMPORT = "import"
    CATALOG = "catalog"
    RUN = "run"


# ISO 639-1 -> PostgreSQL text search configuration; anything else is matched word for word.
SEARCH_CONFIGS = {
    "en": "english",
    "es": "spanish",
    "fr": "french",
    "de": "german",
    "it": "italian",
    "pt": "portuguese",
    "nl": "dutch",
    "sv": "swedish",
    "da": "danish",
}


class MemoryItem(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memory")
    namespace = models.SlugField(max_length=50)
    key = models.CharField(max_length=200)
    version = models.PositiveIntegerField(default=1)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CURRENT)
    content = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    language = models.CharField(max_length=8, blank=True)
    search_config = models.CharField(max_length=20, default="simple")
    source_kind = models.CharField(max_length=16, choices=SourceKind.choices)
    source_ref = models.CharField(max_length=200, blank=True)
    source_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    source_run = models.ForeignKey(
        "agents.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="memory"
    )
    source_seq = models.PositiveIntegerField(null=True, blank=True)
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True)
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="supersedes"
    )
    pinned = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True)
    search_vector = SearchVectorField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["namespace", "key", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "namespace", "key", "version"], name="memory_unique_version"
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gte=models.F("valid_from")),
                name="memory_valid_window",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "namespace", "key"]),
            models.Index(fields=["workspace", "status", "valid_from"]),
            GinIndex(fields=["search_vector"], name="memory_search_vector"),
            cosine_hnsw_index("memory_embedding"),
        ]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.key} v{self.version}"

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


class MemoryEdit(models.Model):
    """An in-place edit of a note (facts get new versions instead)."""

    item = models.ForeignKey(MemoryItem, on_delete=models.CASCADE, related_name="edits")
    before = models.TextField()
    after = models.TextField()
    source_ref = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"edit of {self.item_id} at {self.created_at:%Y-%m-%d %H:%M}"


class MemoryCitation(models.Model):
    """A run's step recalled this item: the "used by" of the curation console."""

    item = models.ForeignKey(MemoryItem, on_delete=models.CASCADE, related_name="citations")
    run = models.ForeignKey("agents.Run", on_delete=models.CASCADE, related_name="citations")
    seq = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["item", "run", "seq"], name="memory_citation_once"),
        ]

    def __str__(self) -> str:
        return f"{self.item} cited by run {self.run_id} step {self.seq}"


class ImportStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class MemoryImport(Leased):
    """A JSONL or CSV file of items, validated whole on upload and written by a worker in
    chunks, so a large file shows its progress and a crash resumes where it stopped."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="memory_imports"
    )
    filename = models.CharField(max_length=200)
    rows = models.JSONField(help_text="The validated rows, written in order.")
    total = models.PositiveIntegerField()
    done = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0, help_text="New items and versions.")
    unchanged = models.PositiveIntegerField(default=0)
    needs_review = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    error = models.TextField(blank=True, help_text="Why rows were skipped, or why it failed.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, help_text="Last progress.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"import {self.pk} of {self.filename}"

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 100

    @property
    def finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)
