"""Exact-match response cache in Redis, keyed by workspace, provider, model, messages and
parameters.

The workspace and a digest of the provider's key are part of every key: one tenant never
receives another's answer, nor learns from a free, instant answer that another sent the
same prompt (issue 17).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.core.cache import cache

from agents.llm.remote import Endpoint

PREFIX = "llm-response:"


def key(
    *,
    workspace_id: int,
    endpoint: Endpoint,
    model: str,
    messages: list[dict[str, str]],
    params: dict[str, Any],
) -> str:
    provider_key = hashlib.sha256(endpoint.api_key.encode()).hexdigest()
    scope = [workspace_id, endpoint.name, endpoint.base_url, provider_key]
    canonical = json.dumps([scope, model, messages, params], sort_keys=True, default=str)
    return PREFIX + hashlib.sha256(canonical.encode()).hexdigest()


def get(cache_key: str) -> dict[str, Any] | None:
    return cache.get(cache_key)


def put(cache_key: str, answer: dict[str, Any]) -> None:
    cache.set(cache_key, answer, timeout=settings.AIOS_LLM_CACHE_SECONDS)
