"""One Redis client per process for the shared state that is not a cache: model endpoints'
capacity and health (redis-py's pool notices a fork and starts afresh in the child)."""

from __future__ import annotations

import functools

import redis
from django.conf import settings


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


def redis_client() -> redis.Redis:
    """The client for `REDIS_URL` (looked up on each call, so a test's setting applies)."""
    return _client(settings.REDIS_URL)
