"""Recovery and retention: the sweeper and the pruning of old journal payloads."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from agents.models import JournalEntry, Run, RunStatus
from agents.services.execution import send_again, slice_lease
from agents.services.runs import budget_waits_resume
from aios_site.core import lease

# -- recovery and retention -------------------------------------------------------------------


def runs_sweep() -> dict[str, int]:
    """The lease's one sweep for runs (`lease.expired_sweep`): sends again runs whose slice's
    lease ran out (their worker died or was paused; the claim takes them over) and queued
    runs whose message got lost, fails runs that ran out of claims (`slice_lease`); then
    resumes runs that waited for a budget period that has now renewed."""
    sent: Counter[str] = Counter()

    def counted(pk: int) -> None:
        sent[send_again(pk)] += 1

    lost = timezone.now() - timedelta(seconds=settings.AIOS_RUN_QUEUED_STALE_SECONDS)
    never_claimed = Q(status=RunStatus.QUEUED, enqueued_at__lt=lost)
    swept = lease.expired_sweep(replace(slice_lease(), on_expired=counted), unclaimed=never_claimed)
    renewed = sum(
        budget_waits_resume(workspace_id=workspace_id, renewed_only=True)
        for workspace_id in Run.objects.filter(status=RunStatus.WAITING, waiting_for__kind="budget")
        .values_list("workspace_id", flat=True)
        .distinct()
    )
    return {
        "recovered": sent[RunStatus.RUNNING],
        "requeued": sent[RunStatus.QUEUED],
        "gave_up": swept["gave_up"],
        "renewed": renewed,
    }


def runs_prune(*, older_than_days: int | None = None) -> int:
    """Drops journal payloads of runs finished long ago; checkpoints, timings and costs stay."""
    days = settings.AIOS_RUN_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    return JournalEntry.objects.filter(run__finished_at__lt=cutoff, pruned=False).update(
        request={}, response=None, pruned=True
    )
