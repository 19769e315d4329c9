"""Thin Celery wrappers: each takes ids and calls one service."""

from __future__ import annotations

from celery import shared_task


@shared_task(
    name="agents.run_advance", acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def run_advance(run_id: int) -> None:
    from agents.services import run_advance as advance

    advance(run_id=run_id)


@shared_task(name="agents.runs_sweep", ignore_result=True)
def runs_sweep() -> None:
    from agents.services import runs_sweep as sweep

    sweep()


@shared_task(
    name="agents.trace_export",
    ignore_result=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def trace_export(run_id: int) -> None:
    from agents.traces import export_run

    export_run(run_id=run_id)


@shared_task(name="agents.runs_prune", ignore_result=True)
def runs_prune() -> None:
    from agents.services import runs_prune as prune

    prune()


@shared_task(
    name="agents.intent_examples_seed",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def intent_examples_seed(workspace_id: int) -> None:
    from agents.services.models import intent_examples_seed as seed
    from aios_site.accounts.models import Workspace

    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is not None:
        seed(workspace=workspace)


@shared_task(
    name="agents.eval_execute", acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def eval_execute(eval_run_id: int) -> None:
    """Runs an eval; redelivered after a lost worker, it goes on from the items not scored."""
    from agents.evals.runner import eval_execute as execute

    execute(eval_run_id=eval_run_id)
