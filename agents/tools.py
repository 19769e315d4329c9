"""Tools a step may call through `ctx.tool(name, **arguments)`; each call is journaled."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from agents.pipelines import PermanentError, TransientError

_TOOLS: dict[str, Callable[..., Any]] = {}
_TAKES_RUN: set[str] = set()


def tool(name: str, *, takes_run: bool = False) -> Callable:
    """Registers a tool. One that `takes_run` is given the calling run as `run=`, outside its
    journaled arguments: a replay (another run) must ask for exactly what the original asked."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        _TOOLS[name] = function
        if takes_run:
            _TAKES_RUN.add(name)
        return function

    return register


def call_tool(name: str, arguments: dict[str, Any], *, run: Any = None) -> Any:
    if name not in _TOOLS:
        raise PermanentError(f"no tool named {name!r}")
    if name in _TAKES_RUN:
        return _TOOLS[name](run=run, **arguments)
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
