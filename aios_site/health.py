"""Liveness of the parts AIOS cannot work without: the database, Redis and the workers."""

from __future__ import annotations

import logging

import redis
from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:
        logger.warning("health: database unavailable: %s", error)
        connection.close()  # do not hand a broken connection to the next request
        return "unavailable"
    return "ok"


def redis_status() -> str:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as error:
        logger.warning("health: redis unavailable: %s", error)
        return "unavailable"
    finally:
        client.close()
    return "ok"


def worker_count() -> int:
    from aios_site.celery import live_worker_count

    try:
        return live_worker_count()
    except Exception as error:  # a Redis hiccup means "no worker seen", not a crash
        logger.warning("health: could not count live workers: %s", error)
        return 0


def health_report() -> tuple[int, dict]:
    report = {"database": database_status(), "redis": redis_status(), "workers": 0}
    if report["redis"] == "ok":
        report["workers"] = worker_count()
    failing = [part for part in ("database", "redis") if report[part] != "ok"]
    if failing:
        report["detail"] = f"{' and '.join(failing)} unavailable"
        return 503, report
    return 200, report
