"""The model seam: chat completions from an OpenAI-compatible endpoint configured in settings.

Every call reaches it through `StepContext.model`, which journals it. What real servers do is
turned into the engine's terms: rate limits (with their Retry-After), 5xx, timeouts and
empty answers are transient, so the step retries with backoff; refusals (4xx) are permanent.
A missing `usage` is estimated from the text and marked as such. Structured output is
validated, with one repair request when the model's JSON does not parse.
"""

from __future__ import annotations

import functools
import json
import math
from decimal import Decimal
from typing import Any

from django.conf import settings

from agents.pipelines import PermanentError, TransientError


class ModelNotConfigured(PermanentError):
    def __init__(self, role: str) -> None:
        super().__init__(
            f"no model configured for the {role!r} role: set AIOS_LLM_BASE_URL and "
            f"AIOS_LLM_MODEL_{role.upper()}"
        )


class InvalidStructuredOutput(PermanentError):
    """The model's answer was not the JSON asked for, even after a repair request."""


def model_name(role: str) -> str:
    return {"small": settings.AIOS_LLM_MODEL_SMALL, "large": settings.AIOS_LLM_MODEL_LARGE}.get(
        role, ""
    )


def chat(
    *, run, role: str, messages: list[dict[str, str]], cache: bool = False, **params: Any
) -> dict[str, Any]:
    """A paid chat completion for a run: budget reserved first, settled and ledgered after.

    With `cache` (opt-in; never for steps that propose effects), an identical earlier
    request's answer is returned from Redis at no cost, and the ledger records the hit.
    """
    import time

    from agents.llm import budgets
    from agents.llm import cache as response_cache

    model = model_name(role)
    if not (settings.AIOS_LLM_BASE_URL and model):
        raise ModelNotConfigured(role)
    params.setdefault("max_tokens", settings.AIOS_LLM_DEFAULT_MAX_TOKENS)
    key = response_cache.key(settings.AIOS_LLM_BASE_URL, model, messages, params) if cache else None
    if key and (hit := response_cache.get(key)) is not None:
        budgets.settle_and_record(
            budgets.Reservation(Decimal("0"), []),
            run=run,
            model=hit["model"],
            tier="remote",
            usage=hit["usage"],
            cost=Decimal("0"),
            latency_ms=0.0,
            cache_hit=True,
        )
        return {**hit, "cost": "0", "cache_hit": True}
    price = budgets.price_for(workspace_id=run.workspace_id, model=model)
    reservation = budgets.reserve(
        agent=run.agent, amount=budgets.worst_case(price, messages, params["max_tokens"])
    )
    started = time.perf_counter()
    try:
        answer = complete(model=model, messages=messages, **params)
    except BaseException:
        budgets.settle(reservation, Decimal("0"))
        raise
    usage = answer["usage"]
    cost = budgets.cost_of(price, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
    budgets.settle_and_record(
        reservation,
        run=run,
        model=answer["model"],
        tier="remote",
        usage=usage,
        cost=cost,
        latency_ms=(time.perf_counter() - started) * 1000,
    )
    if key:
        response_cache.put(key, {**answer, "tier": "remote"})
    return {**answer, "cost": str(cost), "tier": "remote"}


def _client():
    """One client per endpoint and process: building one costs far more than a call."""
    return _cached_client(
        settings.AIOS_LLM_BASE_URL, settings.AIOS_LLM_API_KEY or "unset", settings.AIOS_LLM_TIMEOUT
    )


@functools.lru_cache(maxsize=16)
def _cached_client(base_url: str, api_key: str, timeout: float):
    import openai

    return openai.OpenAI(
        base_url=base_url,
        api_key=api_key,
        timeout=timeout,
        max_retries=0,  # retries belong to the step's policy, which knows about backoff
    )


def complete(
    *, model: str, messages: list[dict[str, str]], json_output: bool = False, **params: Any
) -> dict[str, Any]:
    """One chat completion; with `json_output`, its content parsed as a JSON object."""
    if json_output:
        params["response_format"] = {"type": "json_object"}
    answer = _create(model, messages, params)
    if json_output:
        answer = _parsed(model, messages, params, answer)
    return answer


def _create(model: str, messages: list[dict[str, str]], params: dict[str, Any]) -> dict[str, Any]:
    import openai

    try:
        response = _client().chat.completions.create(model=model, messages=messages, **params)
    except openai.RateLimitError as error:
        raise TransientError(
            f"rate limited by the model endpoint: {error}", retry_after=_retry_after(error.response)
        ) from error
    except (openai.APITimeoutError, openai.APIConnectionError, openai.InternalServerError) as error:
        raise TransientError(f"{type(error).__name__}: {error}") from error
    except openai.APIStatusError as error:
        raise PermanentError(f"the model endpoint refused the request: {error}") from error
    choice = response.choices[0] if response.choices else None
    content = choice.message.content if choice else None
    if not content:
        raise TransientError("the model returned an empty answer")
    return {
        "model": response.model or model,
        "content": content,
        "usage": _usage(response.usage, messages, content),
        "cost": 0,
    }


def _usage(usage, messages: list[dict[str, str]], content: str) -> dict[str, Any]:
    if usage is not None and usage.prompt_tokens is not None:
        return {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens or 0,
        }
    # Some servers leave usage out; about four characters a token is the usual estimate.
    prompt_chars = sum(len(str(m.get("content", ""))) for m in messages)
    return {
        "prompt_tokens": math.ceil(prompt_chars / 4),
        "completion_tokens": math.ceil(len(content) / 4),
        "estimated": True,
    }


def _retry_after(response) -> float | None:
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the step's own backoff applies


def _parsed(model, messages, params, answer: dict[str, Any]) -> dict[str, Any]:
    """The answer's JSON object; one repair request if it does not parse, then give up."""
    try:
        return {**answer, "json": _json_object(answer["content"])}
    except ValueError as error:
        repair = [
            *messages,
            {"role": "assistant", "content": answer["content"]},
            {
                "role": "user",
                "content": f"That was not a valid JSON object ({error}). "
                "Answer again with only the JSON object.",
            },
        ]
        repaired = _create(model, repair, params)
        usage = {
            key: answer["usage"].get(key, 0) + repaired["usage"].get(key, 0)
            for key in ("prompt_tokens", "completion_tokens")
        }
        try:
            return {
                **repaired,
                "usage": usage,
                "json": _json_object(repaired["content"]),
                "repaired": True,
            }
        except ValueError as again:
            raise InvalidStructuredOutput(
                f"no valid JSON object after a repair: {again}"
            ) from again


def _json_object(content: str) -> dict[str, Any]:
    value = json.loads(content)
    if not isinstance(value, dict):
        raise ValueError("a JSON object was expected")
    return value
