"""Agents and runs: create, enqueue, resume, answer, cancel."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents import events
from agents.context import provided
from agents.llm.routing import policy_validate
from agents.models import (
    WEBHOOK_TOPIC,
    Agent,
    Checkpoint,
    CheckpointStatus,
    Priority,
    Run,
    RunStatus,
    Trigger,
)
from agents.pipelines import InvalidInput, get_pipeline
from aios_site.core.actors import SETUP, Actor
from aios_site.core.audit import audit_record
from aios_site.core.hashing import plain
from aios_site.core.signals import run_finished
from aios_site.errors import Conflict
from aios_site.queues import send_later

# -- creating and enqueueing ------------------------------------------------------------------


AUDITED_SETTINGS = [
    "name",
    "pipeline",
    "enabled",
    "priority",
    "model_policy",
    "prompt_versions",
    "daily_budget",
    "monthly_budget",
    "allowed_effectors",
    "webhook_topics",
]


def _agent_audit(agent: Agent, actor: Actor, action: str, *, before=None, after=None) -> None:
    audit_record(
        workspace_id=agent.workspace_id,
        actor=actor,
        action=f"agent.{action}",
        object_type="agent",
        object_id=agent.slug,
        object_label=agent.name,
        before=before,
        after=after,
    )


def _effectors_validate(names: list[str]) -> None:
    """An agent may be allowed only effectors that exist: a typo would otherwise sit in its
    settings, and every proposal through the real name would be refused at run time.
    The registry is governance's (approvals), plugged in as "effector_names"."""
    known = set(provided("effector_names")())
    problems = [
        {
            "type": "unknown_effector",
            "loc": ["body", "payload", "allowed_effectors", index],
            "msg": f"no effector named {name!r}",
        }
        for index, name in enumerate(names)
        if name not in known
    ]
    if problems:
        raise InvalidInput(problems)


def _agent_settings(agent: Agent, names=AUDITED_SETTINGS) -> dict[str, Any]:
    return {name: getattr(agent, name) for name in names}


def _settings_validated(fields: dict[str, Any]) -> dict[str, Any]:
    """An agent's settings checked and normalised: a typo is a 400, not a failed run."""
    from agents.llm import prompts

    fields = dict(fields)
    if "allowed_effectors" in fields:
        _effectors_validate(fields["allowed_effectors"])
    if "model_policy" in fields:
        fields["model_policy"] = policy_validate(fields["model_policy"])
    if "prompt_versions" in fields:
        fields["prompt_versions"] = prompts.validate(fields["prompt_versions"])
    return fields


@transaction.atomic
def agent_create(
    *, workspace, slug: str, name: str, pipeline: str, actor: Actor = SETUP, **fields: Any
) -> Agent:
    get_pipeline(pipeline)  # refuse unknown pipelines up front
    fields = _settings_validated(fields)
    agent = Agent.objects.create(
        workspace=workspace, slug=slug, name=name, pipeline=pipeline, **fields
    )
    _agent_audit(agent, actor, "create", after=_agent_settings(agent))
    return agent


@transaction.atomic
def agent_delete(*, agent: Agent, actor: Actor) -> None:
    _agent_audit(agent, actor, "delete", before=_agent_settings(agent))
    agent.delete()


DEMO_AGENTS = [
    {"slug": "echo", "name": "Echo (asks before finishing)", "pipeline": "demo.echo"},
    {"slug": "noop", "name": "No-op (three empty steps)", "pipeline": "demo.noop"},
    {"slug": "try-model", "name": "Try a model capability", "pipeline": "demo.model_call"},
    {"slug": "ask-memory", "name": "Ask memory (recalls and cites)", "pipeline": "demo.recall"},
    {
        "slug": "proposer",
        "name": "Proposer (proposes what its input says)",
        "pipeline": "demo.propose",
        "allowed_effectors": ["core.note", "core.webhook"],
    },
]


def demo_agents_ensure(*, workspace) -> None:
    """The demo workspace's agents, to try runs, answers, replays and forks; idempotent."""
    for spec in DEMO_AGENTS:
        if not Agent.objects.filter(workspace=workspace, slug=spec["slug"]).exists():
            agent_create(workspace=workspace, **spec)


@transaction.atomic
def agent_update(*, agent: Agent, actor: Actor, **fields: Any) -> Agent:
    """Changes an agent's settings; the audit log keeps what each changed field was before."""
    if "pipeline" in fields:
        get_pipeline(fields["pipeline"])
    fields = _settings_validated(fields)
    before = _agent_settings(agent, list(fields))
    for name, value in fields.items():
        setattr(agent, name, value)
    agent.save(update_fields=list(fields))
    after = _agent_settings(agent, list(fields))
    if plain(before) != plain(after):
        _agent_audit(agent, actor, "update", before=before, after=after)
    if {"daily_budget", "monthly_budget"} & set(fields):
        budget_waits_resume(workspace_id=agent.workspace_id, agent_id=agent.pk)
    if "model_policy" in fields:
        waits_resume(workspace_id=agent.workspace_id, kind="model", agent_id=agent.pk)
    return agent


def webhook_topics_parse(text: str) -> list[str]:
    """Topics typed into a form, separated by commas or spaces."""
    topics = sorted({topic for topic in re.split(r"[\s,]+", text.strip().lower()) if topic})
    wrong = [topic for topic in topics if not re.fullmatch(WEBHOOK_TOPIC, topic)]
    if wrong:
        raise ValueError(f"{wrong[0]!r} is not a webhook topic (like orders/create)")
    if len(topics) > 20:
        raise ValueError("at most 20 topics")
    return topics


def budget_waits_resume(
    *, workspace_id: int, agent_id: int | None = None, renewed_only: bool = False
) -> int:
    """Resumes runs waiting for budget (after a raise, or when their period renewed); a run
    that still does not fit simply waits again."""
    return waits_resume(
        workspace_id=workspace_id, kind="budget", agent_id=agent_id, renewed_only=renewed_only
    )


def waits_resume(
    *, workspace_id: int, kind: str, agent_id: int | None = None, renewed_only: bool = False
) -> int:
    """Resumes runs stopped for want of a budget or a model, after something changed that
    may have fixed it; a run whose problem remains simply waits again."""
    runs = Run.objects.filter(
        workspace_id=workspace_id, status=RunStatus.WAITING, waiting_for__kind=kind
    )
    if agent_id is not None:
        runs = runs.filter(agent_id=agent_id)
    now = timezone.now()
    resumed = 0
    for run in runs:
        if renewed_only and run.waiting_for.get("renews_at", "") > now.isoformat():
            continue
        try:
            run_resume(run=run, kind=kind, data={"resumed_at": now.isoformat()})
            resumed += 1
        except Conflict:  # answered or cancelled meanwhile
            pass
    return resumed


def run_start(
    *,
    agent: Agent,
    input: dict[str, Any],
    trigger: str = Trigger.MANUAL,
    trigger_ref: str = "",
    idempotency_key: str | None = None,
    priority: str | None = None,
) -> tuple[Run, bool]:
    """A new queued run, or (for a repeated idempotency key) the existing one and False."""
    if not agent.enabled:
        raise Conflict(f"agent {agent.slug!r} is disabled")
    if idempotency_key:
        existing = Run.objects.filter(
            workspace_id=agent.workspace_id, idempotency_key=idempotency_key
        ).first()
        if existing:
            return existing, False
    pipeline = get_pipeline(agent.pipeline)
    if trigger == Trigger.MANUAL:
        # A person or an API client can be told what is wrong now (422). Runs the system
        # starts (webhooks, schedules) are not refused: a bad input fails the run, visibly.
        pipeline.input_validate(input)
    try:
        with transaction.atomic():
            run = Run.objects.create(
                workspace_id=agent.workspace_id,
                agent=agent,
                trigger=trigger,
                trigger_ref=trigger_ref,
                idempotency_key=idempotency_key or None,
                priority=priority or agent.priority,
                current_step=pipeline.first_step,
                input=input,
                enqueued_at=timezone.now(),
            )
            enqueue(run)
            events.publish(run, created=True)
    except IntegrityError:  # the same key, submitted concurrently: the other one won
        return Run.objects.get(
            workspace_id=agent.workspace_id, idempotency_key=idempotency_key
        ), False
    return run, True


def enqueue(run: Run, *, countdown: float | None = None) -> None:
    from agents.tasks import run_advance as task

    queue = run.priority if run.priority in Priority.values else Priority.DEFAULT
    send_later(task, run.pk, queue=queue, countdown=countdown)


# -- waiting, resuming, cancelling ------------------------------------------------------------


def run_resume(*, run: Run, kind: str, data: Any) -> Run:
    """Delivers the event a waiting run waits for; it continues at its resume step."""
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        waiting = locked.waiting_for or {}
        if locked.status != RunStatus.WAITING or waiting.get("kind") != kind:
            raise Conflict(f"run {run.pk} is not waiting for {kind}")
        locked.state = {**locked.state, waiting["key"]: data}
        locked.status, locked.waiting_for = RunStatus.QUEUED, None
        locked.enqueued_at = timezone.now()
        locked.save(update_fields=["state", "status", "waiting_for", "enqueued_at"])
        # Only a step that chose to wait records what resumed it (replay feeds it back); a
        # step stopped by a budget or an error is simply run again.
        Checkpoint.objects.filter(
            run=locked,
            seq=locked.next_seq - 1,
            status=CheckpointStatus.OK,
            transition__kind="wait",
        ).update(resumed_with={"kind": kind, "data": data})
        enqueue(locked)
        events.publish(locked)
    return locked


def run_answer(*, run: Run, answer: Any) -> Run:
    """An answer to an escalation; for a run waiting for a model, "try again"."""
    kind = "model" if (run.waiting_for or {}).get("kind") == "model" else "escalation"
    return run_resume(run=run, kind=kind, data=answer)


def run_cancel(*, run: Run) -> Run:
    """Queued or waiting: cancelled now. Running: the step stops before its next call."""
    now = timezone.now()
    with transaction.atomic():
        stopped = Run.objects.filter(
            pk=run.pk, status__in=[RunStatus.QUEUED, RunStatus.WAITING]
        ).update(
            status=RunStatus.CANCELLED, finished_at=now, cancel_requested=True, waiting_for=None
        )
        if not stopped:
            flagged = Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
                cancel_requested=True
            )
            if not flagged:
                raise Conflict(f"run {run.pk} has already finished")
        run.refresh_from_db()
        events.publish(run)
        when_finished(run)
    return run


def when_finished(run: Run) -> None:
    """Tells the layers above that the run is over (`run_finished`) and exports its trace,
    if a collector is configured."""
    if run.is_finished:
        run_finished.send(sender=Run, run=run)
    if run.is_finished and settings.AIOS_OTEL_ENDPOINT:
        from agents.tasks import trace_export

        send_later(trace_export, run.pk)
