"""Exact-match response cache in Redis, keyed by endpoint, model, messages and parameters."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.core.cache import cache

PREFIX = "llm-response:"


def key(base_url: str, model: str, messages: list[dict[str, str]], params: dict[str, Any]) -> str:
    canonical = json.dumps([base_url, model, messages, params], sort_keys=True, default=str)
    return PREFIX + hashlib.sha256(canonical.encode()).hexdigest()


def get(cache_key: str) -> dict[str, Any] | None:
    return cache.get(cache_key)


def put(cache_key: str, answer: dict[str, Any]) -> None:
    cache.set(cache_key, answer, timeout=settings.AIOS_LLM_CACHE_SECONDS)
