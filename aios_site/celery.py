"""The Celery app. Tasks live in each app's tasks.py; settings are the CELERY_* Django settings.

Each worker also keeps a key alive in Redis while it runs (refreshed every few seconds,
expiring soon after it stops or dies), so counting live workers is one quick Redis scan
rather than a broadcast that must wait out its timeout.
"""

from __future__ import annotations

import logging
import os
import threading

from celery import Celery
from celery.signals import (
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_ready,
    worker_shutting_down,
)
from kombu import Exchange, Queue

from aios_site import chaos
from aios_site.queues import QUEUE_NAMES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aios_site.settings.base")

app = Celery("aios")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name, Exchange(name), routing_key=name) for name in QUEUE_NAMES]
app.autodiscover_tasks()

logger = logging.getLogger(__name__)
WORKER_KEY = "aios:worker:{}"
WORKER_TTL_SECONDS = 10
_alive_stop = threading.Event()


def _redis():
    import redis
    from django.conf import settings

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


@worker_ready.connect
def _keep_alive_key(sender, **kwargs) -> None:
    key = WORKER_KEY.format(sender.hostname)

    def refresh() -> None:
        client = _redis()
        while True:
            try:
                client.set(key, os.getpid(), ex=WORKER_TTL_SECONDS)
            except Exception as error:  # Redis away for a moment: the key expires, healthz tells
                logger.warning("could not refresh %s: %s", key, error)
            if _alive_stop.wait(WORKER_TTL_SECONDS / 3):
                return

    threading.Thread(target=refresh, name="aios-alive", daemon=True).start()


@worker_shutting_down.connect
def _drop_alive_key(sender, **kwargs) -> None:
    _alive_stop.set()
    try:
        _redis().delete(WORKER_KEY.format(sender))
    except Exception as error:  # the key expires by itself
        logger.warning("could not drop the live key of %s: %s", sender, error)


@task_prerun.connect
@task_postrun.connect
def _database_connections_checked(task=None, **kwargs) -> None:
    """What Django does around each request: drop a connection that broke or outlived
    CONN_MAX_AGE, and health-check the next one on first use. Celery's own fixup skips this
    while it reuses connections (CELERY_DB_REUSE_MAX), so a connection PostgreSQL closed
    (a restart) failed every later task of the process, for good."""
    if task is not None and getattr(task.request, "is_eager", False):
        return  # in the caller's process and transaction: not ours to close
    from django.db import close_old_connections

    close_old_connections()


@worker_process_init.connect
def _preload_models(**kwargs) -> None:
    from agents.llm.local import preload_in_background

    preload_in_background()


if chaos.ENABLED:  # only the chaos tests' workers: see aios_site/chaos.py

    @worker_process_init.connect
    def _arm_chaos(**kwargs) -> None:
        chaos.pool_process_started()

    @task_postrun.connect
    def _before_ack(**kwargs) -> None:
        # The task is done but its message not yet acknowledged (acks_late): the worker
        # acknowledges it when this pool process reports back.
        chaos.chaos_point("before_ack")


def live_worker_count() -> int:
    """Workers that refreshed their key in the last WORKER_TTL_SECONDS."""
    return sum(1 for _ in _redis().scan_iter(match=WORKER_KEY.format("*"), count=100))
