"""Thin Celery wrappers for governance."""

from __future__ import annotations

from celery import shared_task

from aios_site.core.errors import TransientError


@shared_task(
    name="approvals.proposal_commit",
    bind=True,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(TransientError,),
    retry_backoff=2,
    retry_backoff_max=300,
    max_retries=None,  # the limit is the proposal's own attempt count (AIOS_COMMIT_MAX_ATTEMPTS)
)
def proposal_commit(self, proposal_id: int) -> None:
    from approvals.services import proposal_commit as commit

    commit(proposal_id=proposal_id)


@shared_task(name="approvals.sweep", ignore_result=True)
def sweep() -> None:
    from approvals.services import proposals_sweep

    proposals_sweep()
