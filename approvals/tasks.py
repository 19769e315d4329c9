"""Thin Celery wrappers for governance."""

from __future__ import annotations

from celery import shared_task

from agents.pipelines import TransientError


@shared_task(
    name="approvals.proposal_commit",
    bind=True,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(TransientError,),
    retry_backoff=2,
    retry_backoff_max=300,
    max_retries=8,
)
def proposal_commit(self, proposal_id: int) -> None:
    from approvals.services import proposal_commit as commit
    from approvals.services import proposal_commit_failed

    try:
        commit(proposal_id=proposal_id)
    except TransientError as error:
        if self.request.retries >= self.max_retries:
            proposal_commit_failed(proposal_id=proposal_id, error=f"gave up: {error}")
            return
        raise


@shared_task(name="approvals.sweep", ignore_result=True)
def sweep() -> None:
    from approvals.services import proposals_sweep

    proposals_sweep()
