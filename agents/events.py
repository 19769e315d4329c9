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

logger = logging.getLogger(__name__)

COALESCE_SECONDS = 0.05
_pending: dict[int, tuple[int, bool]] = {}  # run id -> (workspace id, created)
_lock = threading.Lock()
_wake = threading.Event()
# (pid, thread): a forked worker process starts its own.
_publisher: tuple[int, threading.Thread] | None = None


def run_group(run_id: int) -> str:
    return f"run.{run_id}"


def publish(run, *, created: bool = False) -> None:
    """Pushes the run's row to its workspace and its detail to its own page, after commit."""
    run_id, workspace_id = run.pk, run.workspace_id
    transaction.on_commit(lambda: _schedule(run_id, workspace_id, created))


def _schedule(run_id: int, workspace_id: int, created: bool) -> None:
    global _publisher
    with _lock:
        earlier = _pending.get(run_id)
        _pending[run_id] = (workspace_id, created or (earlier is not None and earlier[1]))
        if _publisher is None or _publisher[0] != os.getpid() or not _publisher[1].is_alive():
            thread = threading.Thread(target=_publish_forever, name="aios-publisher", daemon=True)
            _publisher = (os.getpid(), thread)
            thread.start()
    _wake.set()


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
            batch = dict(_pending)
            _pending.clear()
        for run_id, (workspace_id, created) in batch.items():
            loop.run_until_complete(_send(layer, run_id, workspace_id, created))


async def _send(layer, run_id: int, workspace_id: int, created: bool) -> None:
    # Progress is a courtesy to the browser: a failure here must never fail anything.
    from aios_site.consumers import workspace_group

    event = {"type": "run.changed", "run_id": run_id, "created": created}
    try:
        await layer.group_send(workspace_group(workspace_id), event)
        await layer.group_send(run_group(run_id), event)
    except Exception:
        logger.exception("could not publish progress of run %s", run_id)


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


def render_run_live(run_id: int) -> str:
    """The live part of the run's page: status, question, timeline and steps."""
    from django.template.loader import render_to_string

    from agents.selectors import run_detail_context

    context = run_detail_context(run_id=run_id)
    if context is None:
        return ""
    return render_to_string("agents/run_detail.html#run-live", {**context, "oob": True})
