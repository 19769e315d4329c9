"""Which OpenAI-compatible endpoint a remote call goes to.

The settings (`AIOS_LLM_BASE_URL`, `AIOS_LLM_API_KEY`, `AIOS_LLM_MODEL_SMALL|LARGE`) give
the installation's provider, named "default". A workspace may add providers of its own
(keys encrypted at rest); a route names one, or takes the workspace's default provider,
else the settings'. Lookups are cached per process under the workspace's
`providers_version`, which every change of its providers bumps; a run loads its workspace
row afresh each time a worker takes it up, so a saved provider applies to the next run
slice in every process — which is what lets saving one resume the runs that waited for it.
"""

from __future__ import annotations

from django.conf import settings

from agents.llm.endpoints import default_concurrency
from agents.llm.remote import Endpoint

SETTINGS_PROVIDER = "default"
_cache: dict[tuple[int, int, str], Endpoint | None] = {}
MAX_CACHED = 1024


def settings_endpoint() -> Endpoint | None:
    if not settings.AIOS_LLM_BASE_URL:
        return None
    return Endpoint(
        name=SETTINGS_PROVIDER,
        base_url=settings.AIOS_LLM_BASE_URL,
        api_key=settings.AIOS_LLM_API_KEY,
        models={"small": settings.AIOS_LLM_MODEL_SMALL, "large": settings.AIOS_LLM_MODEL_LARGE},
        timeout=settings.AIOS_LLM_TIMEOUT,
        allow_private=True,  # the operator's own setting, often a model server beside it
        concurrency=(
            settings.AIOS_LLM_CONCURRENCY or default_concurrency(settings.AIOS_LLM_BASE_URL)
        ),
    )


def endpoint_for(*, workspace, provider: str = "") -> Endpoint | None:
    """The endpoint a route uses, or None when there is none to use."""
    key = (workspace.pk, workspace.providers_version, provider)
    if key in _cache:
        endpoint = _cache[key]
    else:
        endpoint = _workspace_endpoint(workspace.pk, provider)
        if len(_cache) >= MAX_CACHED:
            _cache.clear()
        _cache[key] = endpoint
    if endpoint is None and provider in ("", SETTINGS_PROVIDER):
        return settings_endpoint()
    return endpoint


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
        concurrency=row.max_concurrency or default_concurrency(row.base_url),
    )
