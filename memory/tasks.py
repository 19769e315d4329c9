"""Thin Celery wrappers for memory."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="memory.embed_pending", ignore_result=True, acks_late=True)
def embed_pending() -> None:
    from memory.services import embed_pending as embed

    embed()


@shared_task(
    name="memory.import_advance",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def import_advance(import_id: int) -> None:
    from memory.services import memory_import_advance

    memory_import_advance(import_id=import_id)


@shared_task(name="memory.sweep", ignore_result=True)
def sweep() -> None:
    from memory.services import memory_sweep

    memory_sweep()
