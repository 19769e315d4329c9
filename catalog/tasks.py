"""Thin Celery wrappers for the catalog."""

from __future__ import annotations

from celery import shared_task


@shared_task(
    name="catalog.webhook_process", ignore_result=True, acks_late=True, reject_on_worker_lost=True
)
def webhook_process(event_id: int) -> None:
    from catalog.services import webhook_process as process

    process(event_id=event_id)


@shared_task(name="catalog.stock_sweep", ignore_result=True)
def stock_sweep() -> None:
    from catalog.agents import stock_sweep as sweep

    sweep()
