"""Live progress: after a run's change commits, the browsers watching it get fresh partials."""

from __future__ import annotations

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def run_group(run_id: int) -> str:
    return f"run.{run_id}"


def publish(run, *, created: bool = False) -> None:
    """Sends the run's row to its workspace and its detail to its own page, on commit."""
    run_id, workspace_id = run.pk, run.workspace_id
    transaction.on_commit(lambda: _send(run_id, workspace_id, created))


def _send(run_id: int, workspace_id: int, created: bool) -> None:
    # Progress is a courtesy to the browser: a failure here must never fail the run.
    try:
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer
        from django.template.loader import render_to_string

        from agents.selectors import run_detail_context
        from aios_site.consumers import workspace_group

        context = run_detail_context(run_id=run_id)
        if context is None:
            return
        layer = get_channel_layer()
        row = render_to_string(
            "agents/runs.html#run-row", {**context, "oob": True, "run_is_new": created}
        )
        async_to_sync(layer.group_send)(
            workspace_group(workspace_id), {"type": "workspace.html", "html": row}
        )
        detail = render_to_string("agents/run_detail.html#run-live", {**context, "oob": True})
        async_to_sync(layer.group_send)(
            run_group(run_id), {"type": "workspace.html", "html": detail}
        )
    except Exception:
        logger.exception("could not publish progress of run %s", run_id)
