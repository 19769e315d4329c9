"""Thin Celery wrappers for memory."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="memory.embed_pending", ignore_result=True, acks_late=True)
def embed_pending() -> None:
    from memory.services import embed_pending as embed

    embed()
