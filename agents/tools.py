"""Tools a step may call through `ctx.tool(name, **arguments)`; each call is journaled."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from agents.pipelines import PermanentError, TransientError

_TOOLS: dict[str, Callable[..., Any]] = {}


def tool(name: str) -> Callable:
    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        _TOOLS[name] = function
        return function

    return register


def call_tool(name: str, arguments: dict[str, Any]) -> Any:
    if name not in _TOOLS:
        raise PermanentError(f"no tool named {name!r}")
    return _TOOLS[name](**arguments)


def _redis():
    import redis
    from django.conf import settings

    return redis.Redis.from_url(settings.REDIS_URL)


# -- demo tools: real effects that tests and benchmarks can observe ---------------------------

DEMO_COUNTER = "aios:demo:calls:{key}"


@tool("demo.count")
def demo_count(*, key: str) -> int:
    """Counts its own invocations in Redis: a stand-in for a paid or external call."""
    return int(_redis().incr(DEMO_COUNTER.format(key=key)))


@tool("demo.sleep")
def demo_sleep(*, seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@tool("demo.flaky")
def demo_flaky(*, key: str, failures: int) -> int:
    """Fails transiently `failures` times for `key`, then succeeds."""
    calls = int(_redis().incr(DEMO_COUNTER.format(key=f"flaky:{key}")))
    if calls <= failures:
        raise TransientError(f"flaky call {calls} of {failures} planned failures")
    return calls
