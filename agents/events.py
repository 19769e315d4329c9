"""Live progress: after a run's change commits, the browsers watching it get fresh partials.

The engine only announces "run N changed" to the groups `workspace.<id>` and `run.<id>`,
from a publisher thread that coalesces several changes of one run, so a step never waits
for it. The websocket consumers of the browsers that watch render the partials, always
from the run as it is now (so a late announcement can never show an older state), and
nothing is rendered when nobody watches.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time

from django.db import transaction

from aios_site.core.groups import run_group, workspace_group

logger = logging.getLogger(__name__)

COALESCE_SECONDS = 0.05
_pending: dict[int, tuple[int, bool]] = {}  # run id -> (workspace id, created)
_streams: dict[int, tuple[str, str]] = {}  # run id -> (step, streamed text so far)
_lock = threading.Lock()
_wake = threading.Event()
# (pid, thread): a forked worker process starts its own.
_publisher: tuple[int, threading.Thread] | None = None


def publish(run, *, created: bool = False) -> None:
    """Pushes the run's row to its workspace and its detail to its own page, after commit."""
    run_id, workspace_id = run.pk, run.workspace_id
    transaction.on_commit(lambda: _schedule(run_id, workspace_id, created))


def run_streamed(run, step: str, text: str) -> None:
    """A model answer being streamed: the run's page shows the text so far (at once: the
    step is still running, there is nothing to commit first)."""
    with _lock:
        _streams[run.pk] = (step, text)
    _ensure_publisher()
    _wake.set()


def _schedule(run_id: int, workspace_id: int, created: bool) -> None:
    with _lock:
        earlier = _pending.get(run_id)
        _pending[run_id] = (workspace_id, created or (earlier is not None and earlier[1]))
    _ensure_publisher()
    _wake.set()


def _ensure_publisher() -> None:
    global _publisher
    with _lock:
        if _publisher is None or _publisher[0] != os.getpid() or not _publisher[1].is_alive():
            thread = threading.Thread(target=_publish_forever, name="aios-publisher", daemon=True)
            _publisher = (os.getpid(), thread)
            thread.start()


def _publish_forever() -> None:
    from channels.layers import get_channel_layer

    # One event loop for the thread's life, so the channel layer keeps its Redis connections.
    loop = asyncio.new_event_loop()
    layer = get_channel_layer()
    while True:
        _wake.wait()
        time.sleep(COALESCE_SECONDS)  # a run's quick successive steps become one push
        _wake.clear()
        with _lock:
            batch, streams = dict(_pending), dict(_streams)
            _pending.clear()
            _streams.clear()
        for run_id, (step, text) in streams.items():
            event = {"type": "run.streamed", "run_id": run_id, "step": step, "text": text}
            loop.run_until_complete(_send_event(layer, run_group(run_id), event))
        for run_id, (workspace_id, created) in batch.items():
            loop.run_until_complete(_send(layer, run_id, workspace_id, created))


async def _send(layer, run_id: int, workspace_id: int, created: bool) -> None:
    # Progress is a courtesy to the browser: a failure here must never fail anything.
    event = {"type": "run.changed", "run_id": run_id, "created": created}
    await _send_event(layer, workspace_group(workspace_id), event)
    await _send_event(layer, run_group(run_id), event)


async def _send_event(layer, group: str, event: dict) -> None:
    try:
        await layer.group_send(group, event)
    except Exception:
        logger.exception("could not publish %s to %s", event["type"], group)


# -- rendering, done by the websocket consumers of the browsers that watch -------------------


def render_run_row(run_id: int, *, created: bool) -> str:
    """The run's row in the runs list: replaces the row, or is prepended for a new run."""
    from django.template.loader import render_to_string

    from agents.selectors import run_detail_context

    context = run_detail_context(run_id=run_id, with_steps=False)
    if context is None:
        return ""
    return render_to_string(
        "agents/runs.html#run-row", {**context, "oob": True, "run_is_new": created}
    )


def render_run_stream(*, step: str, text: str) -> str:
    """The text a model is streaming for the run's current step (escaped: model output)."""
    from django.template.loader import render_to_string

    return render_to_string(
        "agents/run_detail.html#run-stream", {"stream": {"step": step, "text": text}, "oob": True}
    )


def render_run_live(run_id: int, *, can_operate: bool) -> str:
    """The live part of the run's page: status, question, timeline, steps and the actions
    (answer, cancel, replay, fork) of a watcher who may operate."""
    from django.template.loader import render_to_string

    from agents.selectors import run_detail_context

    context = run_detail_context(run_id=run_id)
    if context is None:
        return ""
    return render_to_string(
        "agents/run_detail.html#run-live", {**context, "oob": True, "can_operate": can_operate}
    )
