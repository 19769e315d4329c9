"""Which OpenAI-compatible endpoint a remote call goes to.

The settings (`AIOS_LLM_BASE_URL`, `AIOS_LLM_API_KEY`, `AIOS_LLM_MODEL_SMALL|LARGE`) give
the installation's provider, named "default". A workspace may add providers of its own
(keys encrypted at rest); a route names one, or takes the workspace's default provider,
else the settings'. Lookups are cached per process for a few seconds: a call costs one
dictionary read, and an edited provider applies within that time everywhere (at once in the
process that edited it).
"""

from __future__ import annotations

from time import monotonic

from django.conf import settings

from agents.llm.remote import Endpoint

SETTINGS_PROVIDER = "default"
CACHE_SECONDS = 10.0
_cache: dict[tuple[int, str], tuple[float, Endpoint | None]] = {}


def settings_endpoint() -> Endpoint | None:
    if not settings.AIOS_LLM_BASE_URL:
        return None
    return Endpoint(
        name=SETTINGS_PROVIDER,
        base_url=settings.AIOS_LLM_BASE_URL,
        api_key=settings.AIOS_LLM_API_KEY,
        models={"small": settings.AIOS_LLM_MODEL_SMALL, "large": settings.AIOS_LLM_MODEL_LARGE},
        timeout=settings.AIOS_LLM_TIMEOUT,
    )


def endpoint_for(*, workspace_id: int, provider: str = "") -> Endpoint | None:
    """The endpoint a route uses, or None when there is none to use."""
    key = (workspace_id, provider)
    cached = _cache.get(key)
    if cached and cached[0] > monotonic():
        endpoint = cached[1]
    else:
        endpoint = _workspace_endpoint(workspace_id, provider)
        _cache[key] = (monotonic() + CACHE_SECONDS, endpoint)
    if endpoint is None and provider in ("", SETTINGS_PROVIDER):
        return settings_endpoint()
    return endpoint


def forget(workspace_id: int | None = None) -> None:
    """Drops cached lookups (after a provider changed, or when settings change in tests)."""
    for key in [k for k in _cache if workspace_id is None or k[0] == workspace_id]:
        _cache.pop(key, None)


def _workspace_endpoint(workspace_id: int, provider: str) -> Endpoint | None:
    from agents.models import Provider

    rows = Provider.objects.filter(workspace_id=workspace_id)
    row = rows.filter(name=provider).first() if provider else rows.filter(is_default=True).first()
    return endpoint_of(row) if row is not None else None


def endpoint_of(row) -> Endpoint:
    return Endpoint(
        name=row.name,
        base_url=row.base_url,
        api_key=row.api_key,
        models={"small": row.model_small, "large": row.model_large},
        timeout=settings.AIOS_LLM_TIMEOUT,
    )
