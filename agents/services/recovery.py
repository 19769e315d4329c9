"""Recovery and retention: the sweeper and the pruning of old journal payloads."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents.models import (
    Checkpoint,
    CheckpointStatus,
    JournalEntry,
    Run,
    RunStatus,
)
from agents.services.runs import budget_waits_resume, enqueue

# -- recovery and retention -------------------------------------------------------------------


def runs_sweep() -> dict[str, int]:
    """Re-enqueues runs of dead workers (stale heartbeat) and queued runs whose message got
    lost, and resumes runs that waited for a budget period that has now renewed."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.AIOS_RUN_STALE_SECONDS)
    recovered = 0
    for run in Run.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=stale):
        with transaction.atomic():
            taken = Run.objects.filter(
                pk=run.pk, status=RunStatus.RUNNING, heartbeat_at__lt=stale
            ).update(status=RunStatus.QUEUED, claim_token=None, enqueued_at=now)
            if taken:
                Checkpoint.objects.filter(run=run, status=CheckpointStatus.RUNNING).update(
                    status=CheckpointStatus.ERROR,
                    error="worker lost; the run was recovered",
                    finished_at=now,
                )
                enqueue(run)
                recovered += 1
    lost = now - timedelta(seconds=settings.AIOS_RUN_QUEUED_STALE_SECONDS)
    requeued = 0
    for run in Run.objects.filter(status=RunStatus.QUEUED, enqueued_at__lt=lost).filter(
        Q(not_before__isnull=True) | Q(not_before__lte=now)
    ):
        if Run.objects.filter(pk=run.pk, status=RunStatus.QUEUED, enqueued_at__lt=lost).update(
            enqueued_at=now
        ):
            enqueue(run)  # a duplicate message is harmless: only one claim succeeds
            requeued += 1
    renewed = sum(
        budget_waits_resume(workspace_id=workspace_id, renewed_only=True)
        for workspace_id in Run.objects.filter(status=RunStatus.WAITING, waiting_for__kind="budget")
        .values_list("workspace_id", flat=True)
        .distinct()
    )
    return {"recovered": recovered, "requeued": requeued, "renewed": renewed}


def runs_prune(*, older_than_days: int | None = None) -> int:
    """Drops journal payloads of runs finished long ago; checkpoints, timings and costs stay."""
    days = settings.AIOS_RUN_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    return JournalEntry.objects.filter(run__finished_at__lt=cutoff, pruned=False).update(
        request={}, response=None, pruned=True
    )
