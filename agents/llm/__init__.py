"""The model seam: chat completions from an OpenAI-compatible endpoint configured in settings.

Tiers, caching, batching and budgets build on this module; every call reaches it through
`StepContext.model`, which journals it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from agents.pipelines import PermanentError


class ModelNotConfigured(PermanentError):
    def __init__(self, role: str) -> None:
        super().__init__(
            f"no model configured for the {role!r} role: set AIOS_LLM_BASE_URL and "
            f"AIOS_LLM_MODEL_{role.upper()}"
        )


def model_name(role: str) -> str:
    return {"small": settings.AIOS_LLM_MODEL_SMALL, "large": settings.AIOS_LLM_MODEL_LARGE}.get(
        role, ""
    )


def complete(*, role: str, messages: list[dict[str, str]], **params: Any) -> dict[str, Any]:
    model = model_name(role)
    if not (settings.AIOS_LLM_BASE_URL and model):
        raise ModelNotConfigured(role)
    import openai

    client = openai.OpenAI(
        base_url=settings.AIOS_LLM_BASE_URL,
        api_key=settings.AIOS_LLM_API_KEY or "unset",
        max_retries=0,  # retries belong to the step's policy, which knows about backoff
    )
    response = client.chat.completions.create(model=model, messages=messages, **params)
    usage = response.usage
    return {
        "model": response.model,
        "content": response.choices[0].message.content,
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
        }
        if usage
        else {},
        "cost": 0,
    }
