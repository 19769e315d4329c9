"""The run engine's services. Writes and side effects only; reads are in `agents.selectors`."""

from __future__ import annotations

from agents.services.execution import run_advance
from agents.services.recovery import runs_prune, runs_sweep
from agents.services.replay import run_fork, run_replay
from agents.services.runs import (
    DEMO_AGENTS,
    Conflict,
    agent_create,
    agent_delete,
    agent_update,
    budget_waits_resume,
    demo_agents_ensure,
    enqueue,
    run_answer,
    run_cancel,
    run_resume,
    run_start,
    webhook_topics_parse,
)

__all__ = [
    "DEMO_AGENTS",
    "Conflict",
    "agent_create",
    "agent_delete",
    "agent_update",
    "budget_waits_resume",
    "demo_agents_ensure",
    "enqueue",
    "run_advance",
    "run_answer",
    "run_cancel",
    "run_fork",
    "run_replay",
    "run_resume",
    "run_start",
    "runs_prune",
    "runs_sweep",
    "webhook_topics_parse",
]
