"""The Celery queues, by priority: UI-facing work, normal work, batch work."""

from __future__ import annotations

QUEUE_NAMES = ("interactive", "default", "bulk")
QUEUES = ",".join(QUEUE_NAMES)
