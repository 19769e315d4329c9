"""The Celery app. Tasks live in each app's tasks.py; settings are the CELERY_* Django settings."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

from aios_site.queues import QUEUE_NAMES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aios_site.settings.base")

app = Celery("aios")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name, Exchange(name), routing_key=name) for name in QUEUE_NAMES]
app.autodiscover_tasks()


def live_worker_count(*, timeout: float = 0.5) -> int:
    """How many workers answer a broadcast ping within `timeout` seconds."""
    replies = app.control.ping(timeout=timeout) or []
    return len(replies)
