"""A model endpoint's health and capacity, shared by every worker through Redis.

- **Concurrency**: an endpoint serves at most `Endpoint.concurrency` requests at once, from all
  workers together (a model server on one small machine answers one request at a time; sent
  a second, it queues it, and a client timeout leaves it running there). A call waits its
  turn for up to `AIOS_LLM_QUEUE_SECONDS` instead of timing out at the server. A slot is a
  member of a sorted set scored by when it expires, so a worker that dies holding one frees it.
- **Circuit breaker**: after `AIOS_LLM_BREAKER_FAILURES` connection failures in a row the
  endpoint is open: calls do not go out, and the runs that need it wait
  (`EndpointUnavailable`, which the engine turns into a wait, not a failed attempt) until a
  probe is due; one call is let through as the probe, and its success closes the breaker.
  The probe interval doubles up to `AIOS_LLM_BREAKER_MAX_SECONDS`.

Keys are per base URL: two workspaces using one server share its capacity and its outage.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import ipaddress
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from aios_site.core.errors import TransientError, Unavailable
from aios_site.core.redisconn import redis_client

# A hosted API serves many requests at once; a model server on a box of its own, one.
DEFAULT_CONCURRENCY = {"hosted": 16, "self-hosted": 1}
SLOT_GRACE_SECONDS = 5.0
_POLL_SECONDS = (0.02, 0.25)

# Acquire a slot: drop the expired ones, then take one if fewer than the limit are held.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0
"""


class EndpointUnavailable(Unavailable):
    """The endpoint's breaker is open: the run waits for it, this is not a failed attempt."""


def kind(base_url: str) -> str:
    """'self-hosted' for a server on a loopback or private address, else 'hosted'."""
    host = urlsplit(base_url).hostname or ""
    if host == "localhost" or host.endswith(".local"):
        return "self-hosted"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "hosted"
    return "self-hosted" if address.is_private or address.is_loopback else "hosted"


def default_concurrency(base_url: str) -> int:
    return DEFAULT_CONCURRENCY[kind(base_url)]


def _key(endpoint, part: str) -> str:
    digest = hashlib.sha256(endpoint.base_url.encode()).hexdigest()[:16]
    return f"aios:llm:endpoint:{digest}:{part}"


@contextlib.contextmanager
def admitted(endpoint) -> Iterator[None]:
    """One call to `endpoint`: refused at once while its breaker is open, else admitted when
    a slot is free (waiting in turn), its outcome recorded for the breaker."""
    probe = _check_breaker(endpoint)
    with _slot(endpoint):
        started = time.monotonic()
        try:
            yield
        except BaseException as error:
            if not getattr(error, "unreachable", False):
                if probe:
                    _release_probe(endpoint)
                raise
            if _failed(endpoint, error):  # the same outage: the run waits, it did not fail
                raise _unavailable(endpoint, _state(endpoint)) from error
            raise
        _succeeded(endpoint, (time.monotonic() - started) * 1000)


# -- concurrency --------------------------------------------------------------------------------


@contextlib.contextmanager
def _slot(endpoint) -> Iterator[None]:
    client = redis_client()
    slots, waiting = _key(endpoint, "slots"), _key(endpoint, "waiting")
    token = uuid.uuid4().hex
    hold = endpoint.timeout + SLOT_GRACE_SECONDS
    deadline = time.monotonic() + settings.AIOS_LLM_QUEUE_SECONDS
    acquire = _acquire_script(client)
    queued, pause = False, _POLL_SECONDS[0]
    try:
        while not acquire(
            keys=[slots], args=[time.time(), endpoint.concurrency, time.time() + hold, token, 3600]
        ):
            if not queued:
                client.incr(waiting)
                client.expire(waiting, 3600)
                queued = True
            if time.monotonic() > deadline:
                raise TransientError(
                    f"model endpoint {endpoint.name!r} busy: no turn within "
                    f"{settings.AIOS_LLM_QUEUE_SECONDS:.0f} s ({endpoint.concurrency} at a time)"
                )
            time.sleep(pause)
            pause = min(pause * 2, _POLL_SECONDS[1])
    finally:
        if queued:
            client.decr(waiting)
    try:
        yield
    finally:
        client.zrem(slots, token)


@functools.cache
def _acquire_script(client):
    """The slot script, bound once per client (it is sent by its SHA after the first call)."""
    return client.register_script(_ACQUIRE)


# -- circuit breaker ----------------------------------------------------------------------------


def _check_breaker(endpoint) -> bool:
    """True if this call is the probe of an open breaker; raises while no probe is due."""
    state = _state(endpoint)
    open_until = float(state.get("open_until") or 0)
    if not open_until:
        return False
    since = float(state["since"])
    if time.time() - since > settings.AIOS_LLM_OUTAGE_WAIT_SECONDS:
        # Waited long enough: the call goes out, and its failure counts against the step.
        return False
    if open_until <= time.time() and redis_client().set(
        _key(endpoint, "probe"), "1", nx=True, ex=int(endpoint.timeout + SLOT_GRACE_SECONDS)
    ):
        return True
    raise _unavailable(endpoint, state)


def _unavailable(endpoint, state: dict[str, str]) -> EndpointUnavailable:
    wait = float(state.get("open_until") or 0) - time.time()
    return EndpointUnavailable(
        f"model endpoint {endpoint.name!r} unreachable since {_clock(float(state['since']))} "
        f"({state.get('last_error', 'no connection')}); the run waits and resumes by itself "
        "when it answers again",
        retry_after=max(wait, 0.1),
    )


def _failed(endpoint, error: BaseException) -> bool:
    """Counts a connection failure; True when the breaker is open (and runs should wait)."""
    client = redis_client()
    state_key, now = _key(endpoint, "state"), time.time()
    failures = client.hincrby(state_key, "failures", 1)
    client.hsetnx(state_key, "since", now)
    client.hset(state_key, "last_error", f"{type(error).__name__}: {error}"[:300])
    threshold = settings.AIOS_LLM_BREAKER_FAILURES
    if failures >= threshold:
        interval = min(
            settings.AIOS_LLM_BREAKER_MAX_SECONDS,
            settings.AIOS_LLM_BREAKER_SECONDS * 2 ** (failures - threshold),
        )
        client.hset(state_key, "open_until", now + interval)
    client.expire(state_key, 7 * 24 * 3600)
    _release_probe(endpoint)
    since = float(client.hget(state_key, "since") or now)
    return failures >= threshold and now - since <= settings.AIOS_LLM_OUTAGE_WAIT_SECONDS


def _succeeded(endpoint, latency_ms: float) -> None:
    client = redis_client()
    state_key = _key(endpoint, "state")
    pipe = client.pipeline()
    pipe.hdel(state_key, "failures", "since", "open_until", "last_error")
    pipe.hset(state_key, "latency_ms", round(latency_ms, 1))
    pipe.hset(state_key, "answered_at", time.time())
    pipe.expire(state_key, 7 * 24 * 3600)
    pipe.delete(_key(endpoint, "probe"))
    pipe.execute()


def _release_probe(endpoint) -> None:
    redis_client().delete(_key(endpoint, "probe"))


def _state(endpoint) -> dict[str, str]:
    found = redis_client().hgetall(_key(endpoint, "state"))
    return {key.decode(): value.decode() for key, value in found.items()}


def _clock(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%H:%M UTC")


def status(endpoint) -> dict[str, Any]:
    """What the Models page shows of an endpoint: its state, last latency, calls in flight
    and waiting, and since when it has been unreachable."""
    client = redis_client()
    state = _state(endpoint)
    slots = _key(endpoint, "slots")
    client.zremrangebyscore(slots, "-inf", time.time())
    open_until = float(state.get("open_until") or 0)
    since = float(state["since"]) if state.get("since") else None
    return {
        "state": "unreachable" if open_until else ("failing" if since else "up"),
        "since": datetime.fromtimestamp(since, tz=UTC) if since else None,
        "last_error": state.get("last_error", ""),
        "latency_ms": float(state["latency_ms"]) if state.get("latency_ms") else None,
        "in_flight": client.zcard(slots),
        "waiting": max(int(client.get(_key(endpoint, "waiting")) or 0), 0),
        "concurrency": endpoint.concurrency,
    }
