"""Thin Celery wrappers for the catalog."""

from __future__ import annotations

from celery import shared_task

from aios_site.batching import Batcher
from aios_site.queues import send


@shared_task(
    name="catalog.webhook_process_batch",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def webhook_process_batch(event_ids: list[int]) -> None:
    from catalog.services import webhook_process_many

    webhook_process_many(event_ids=event_ids)


# Stored deliveries are queued for processing a few milliseconds later, many per message.
webhook_batches = Batcher(lambda event_ids: send(webhook_process_batch, event_ids))


@shared_task(name="catalog.webhook_sweep", ignore_result=True)
def webhook_sweep() -> None:
    from catalog.services import webhook_sweep as sweep

    sweep()


@shared_task(name="catalog.stock_sweep", ignore_result=True)
def stock_sweep() -> None:
    from catalog.agents import stock_sweep as sweep

    sweep()


@shared_task(
    name="catalog.content_publish_due",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def content_publish_due(now: str | None = None) -> None:
    """Publishes the posts due by `now` (an ISO time; default: the clock, as beat sends it)."""
    from django.utils.dateparse import parse_datetime

    from catalog.content.services import posts_publish_due

    posts_publish_due(now=parse_datetime(now) if now else None)
