"""The Celery queues, by priority: UI-facing work, normal work, batch work; and the one way
every service hands work to them.

A task message is only ever a hint that a committed row wants attention: every row a task
is about is also found by a sweep (queued runs whose message got lost, commits nobody
claimed, imports that stopped progressing, stored webhooks, items without a vector). So
when the broker is down, the write that was committed is still a success for whoever asked
for it; the message is logged as not sent and the sweep sends it when Redis is back.
"""

from __future__ import annotations

import logging
from typing import Any

import kombu.exceptions
import redis.exceptions
from django.db import transaction

logger = logging.getLogger(__name__)

QUEUE_NAMES = ("interactive", "default", "bulk")
QUEUES = ",".join(QUEUE_NAMES)

# What publishing raises when the broker cannot be reached: kombu wraps the connection
# errors of its transport in OperationalError; a few reach us unwrapped.
BROKER_DOWN: tuple[type[BaseException], ...] = (
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)


def send(task: Any, *args: Any, **options: Any) -> bool:
    """Publishes `task(*args)` now (`options` as for `apply_async`: queue, countdown …).
    False when the broker is down: logged, and left to the sweep that finds the row."""
    try:
        task.apply_async(args=args, **options)
    except BROKER_DOWN as error:
        logger.warning("could not queue %s%r (%s); its sweep will", task.name, args, error)
        return False
    return True


def send_later(task: Any, *args: Any, **options: Any) -> None:
    """`send` once the current transaction commits (at once outside one): a worker must
    never look for a row that is not there yet, and a rolled back row wants no message."""
    transaction.on_commit(lambda: send(task, *args, **options))
