"""Fault points: a Celery pool process that SIGKILLs itself (and maybe its worker) at named
moments, so the chaos tests can show that a worker dying anywhere loses nothing and applies
nothing twice.

`chaos_point(name)` does nothing unless the environment names the point, which only the
chaos tests do, for the workers they start:

    AIOS_CHAOS="before_model_call=0.05,before_checkpoint_commit=0.05,
                during_effector_commit=0.2,before_ack=0.05"   # point=probability
    AIOS_CHAOS_KILL_MAIN=0.3       # the chance that the worker's main process dies too
    AIOS_CHAOS_LOG=/tmp/kills      # one JSON line per kill, appended before dying
    AIOS_CHAOS_NO_IDEMPOTENCY=1    # a fresh idempotency key on every commit attempt

The points are read once, at import. Even when they are set, only a pool process of a
Celery worker ever kills itself (`pool_process_started` arms it): never the web process,
beat, a command or a test.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
import uuid

POINTS = ("before_model_call", "before_checkpoint_commit", "during_effector_commit", "before_ack")


def _odds(text: str) -> dict[str, float]:
    odds = {}
    for part in text.split(","):
        name, _, chance = part.strip().partition("=")
        if name:
            if name not in POINTS:
                raise ValueError(f"AIOS_CHAOS: no fault point named {name!r}")
            odds[name] = float(chance or 1)
    return odds


ODDS = _odds(os.environ.get("AIOS_CHAOS", ""))
ENABLED = bool(ODDS)
KILL_MAIN = float(os.environ.get("AIOS_CHAOS_KILL_MAIN") or 0) if ENABLED else 0.0
LOG = os.environ.get("AIOS_CHAOS_LOG", "") if ENABLED else ""
NO_IDEMPOTENCY = ENABLED and os.environ.get("AIOS_CHAOS_NO_IDEMPOTENCY", "") not in ("", "0")
_worker_pid: int | None = None  # the worker's main process, once this pool process is armed


def pool_process_started() -> None:
    """Arms the fault points in a Celery pool process (its parent is the worker)."""
    global _worker_pid
    if ENABLED:
        _worker_pid = os.getppid()


def chaos_point(name: str) -> None:
    """Dies here, with the configured probability, if this is an armed pool process."""
    if _worker_pid is None or random.random() >= ODDS.get(name, 0.0):  # noqa: S311
        return
    with_worker = random.random() < KILL_MAIN  # noqa: S311
    _record(name, with_worker)
    if with_worker:
        os.kill(_worker_pid, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _record(name: str, with_worker: bool) -> None:
    if not LOG:
        return
    kill = {"point": name, "pid": os.getpid(), "worker": _worker_pid, "main": with_worker}
    line = json.dumps({**kill, "at": time.time()})
    fd = os.open(LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (line + "\n").encode())  # one write: lines of two processes never mix
    finally:
        os.close(fd)


def attempt_key(key: str) -> str:
    """The idempotency key a commit sends: the proposal's own, or with the test-only
    AIOS_CHAOS_NO_IDEMPOTENCY a fresh one per attempt (still naming the proposal before
    the "~"), as if the connector sent none: what the chaos checker must catch."""
    return f"{key}~{uuid.uuid4().hex[:12]}" if NO_IDEMPOTENCY else key
