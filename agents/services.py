"""The run engine: start, claim, execute, wait and resume, retry, cancel, recover, replay, fork.

Invariants:
- Only the worker holding a run's claim token writes its progress; every write checks it.
- A checkpoint's result commits in the same transaction as the run's new status and state,
  and the next enqueue happens on commit.
- Journal entries commit as each call returns, so a retried step reuses them.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from agents import events
from agents.checkpoints import claim_and_open, close_step
from agents.context import Cancelled, Divergence, StepContext
from agents.models import (
    ACTIVE_STATUSES,
    Agent,
    Checkpoint,
    CheckpointStatus,
    JournalEntry,
    Priority,
    Run,
    RunStatus,
    Trigger,
)
from agents.pipelines import (
    PermanentError,
    RetryPolicy,
    Transition,
    get_pipeline,
    is_transient,
)

logger = logging.getLogger(__name__)


class Conflict(Exception):
    """The current state does not allow this: answering a run that is not waiting, a taken slug."""


# -- creating and enqueueing ------------------------------------------------------------------


def agent_create(*, workspace, slug: str, name: str, pipeline: str, **fields: Any) -> Agent:
    get_pipeline(pipeline)  # refuse unknown pipelines up front
    return Agent.objects.create(
        workspace=workspace, slug=slug, name=name, pipeline=pipeline, **fields
    )


DEMO_AGENTS = [
    {"slug": "echo", "name": "Echo (asks before finishing)", "pipeline": "demo.echo"},
    {"slug": "noop", "name": "No-op (three empty steps)", "pipeline": "demo.noop"},
]


def demo_agents_ensure(*, workspace) -> None:
    """The demo workspace's agents, to try runs, answers, replays and forks; idempotent."""
    for spec in DEMO_AGENTS:
        Agent.objects.get_or_create(workspace=workspace, slug=spec["slug"], defaults=spec)


def agent_update(*, agent: Agent, **fields: Any) -> Agent:
    if "pipeline" in fields:
        get_pipeline(fields["pipeline"])
    for name, value in fields.items():
        setattr(agent, name, value)
    agent.save(update_fields=list(fields))
    return agent


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
            _enqueue(run)
            events.publish(run, created=True)
    except IntegrityError:  # the same key, submitted concurrently: the other one won
        return Run.objects.get(
            workspace_id=agent.workspace_id, idempotency_key=idempotency_key
        ), False
    return run, True


def _enqueue(run: Run, *, countdown: float | None = None) -> None:
    from agents.tasks import run_advance as task

    queue = run.priority if run.priority in Priority.values else Priority.DEFAULT
    transaction.on_commit(lambda: task.apply_async(args=[run.pk], queue=queue, countdown=countdown))


# -- executing --------------------------------------------------------------------------------


def run_advance(*, run_id: int) -> None:
    """Claims the run and executes its steps until it waits, ends, or its time slice is used."""
    token = uuid.uuid4()
    run = claim_and_open(run_id=run_id, token=token)
    if run is None:
        return  # another worker has it, it is not due yet, or it is no longer queued
    events.publish(run)
    deadline = time.monotonic() + settings.AIOS_RUN_SLICE_SECONDS
    with _Heartbeat(run_id, token):
        while run.status == RunStatus.RUNNING:
            if run.cancel_requested:
                _commit(
                    run,
                    token,
                    None,
                    status=RunStatus.CANCELLED,
                    finished_at=timezone.now(),
                    claim_token=None,
                )
                break
            if not _execute_step(run, token, deadline=deadline):
                break
            if run.status == RunStatus.RUNNING and time.monotonic() > deadline:
                # Let other runs have the worker; this one continues from its next step.
                if _commit(
                    run,
                    token,
                    None,
                    status=RunStatus.QUEUED,
                    claim_token=None,
                    enqueued_at=timezone.now(),
                ):
                    _enqueue(run)
                break


def _execute_step(run: Run, token: uuid.UUID, *, deadline: float) -> bool:
    """Runs one attempt of the current step and commits what it led to. False: claim lost.

    The step's checkpoint was usually opened already, by the claim or by the commit that
    closed the step before; it records the attempt before anything runs.
    """
    try:
        pipeline = get_pipeline(run.agent.pipeline)
    except PermanentError as error:
        return _commit(
            run,
            token,
            None,
            status=RunStatus.FAILED,
            error=str(error),
            finished_at=timezone.now(),
            claim_token=None,
        )
    seq, step_name = run.next_seq, run.current_step
    policy = pipeline.retry_policy(step_name)
    checkpoint = run.__dict__.pop("opened_checkpoint", None)
    if checkpoint is None or checkpoint.seq != seq:
        attempt = Checkpoint.objects.filter(run=run, seq=seq).count() + 1
        checkpoint = Checkpoint.objects.create(
            run=run, seq=seq, step=step_name, attempt=attempt, state_before=run.state
        )
    attempt = checkpoint.attempt
    if attempt > policy.attempts:  # earlier attempts died with their worker
        error = PermanentError(f"step {step_name!r} did not complete in {policy.attempts} attempts")
        return _commit_error(run, token, checkpoint, error, policy)
    replay = _ReplaySource(run, seq) if run.trigger == Trigger.REPLAY else None
    context = StepContext(
        run=run, checkpoint=checkpoint, replay_of=replay.calls if replay else None
    )
    try:
        if replay:
            replay.check_step(step_name)
        transition = pipeline.step_function(step_name)(context)
        _validate(pipeline, transition)
        if replay:
            replay.check_result(context, transition)
    except Cancelled:
        return _commit(
            run,
            token,
            checkpoint,
            cp_status=CheckpointStatus.CANCELLED,
            status=RunStatus.CANCELLED,
            finished_at=timezone.now(),
            claim_token=None,
        )
    except Divergence as divergence:
        return _commit(
            run,
            token,
            checkpoint,
            cp_status=CheckpointStatus.ERROR,
            cp_error="replay diverged",
            status=RunStatus.SUCCEEDED,
            replay_verdict=[divergence.as_json()],
            finished_at=timezone.now(),
            claim_token=None,
        )
    except Exception as error:  # a step's failure is data about the run, never a crash
        logger.info("run %s step %s attempt %s failed: %r", run.pk, step_name, attempt, error)
        return _commit_error(run, token, checkpoint, error, policy)
    keep_going = transition.kind == "goto" and time.monotonic() < deadline
    return _commit_transition(run, token, checkpoint, context, transition, replay, keep_going)


def _validate(pipeline, transition: Any) -> None:
    if not isinstance(transition, Transition):
        raise PermanentError(f"a step must return a transition, not {type(transition).__name__}")
    if transition.kind in {"goto", "wait"}:
        pipeline.step_function(transition.target)
    json.dumps([transition.updates, transition.outcome])  # TypeError if not JSON-serialisable


def _commit_transition(run, token, checkpoint, context, transition, replay, keep_going) -> bool:
    state = {**context.state, **transition.updates}
    fields: dict[str, Any] = {
        "state": state,
        "next_seq": checkpoint.seq + 1,
        "cost": run.cost + context.cost,
    }
    if transition.kind == "goto":
        fields["current_step"] = transition.target
    elif transition.kind == "wait" and replay:
        # A replay does not wait: it is given the event the original run received.
        resumed = replay.resumed_with()
        if resumed is None:
            fields.update(
                status=RunStatus.SUCCEEDED,
                finished_at=timezone.now(),
                claim_token=None,
                replay_verdict="identical",
            )
        else:
            fields.update(
                current_step=transition.target,
                state={**state, transition.waiting_for["key"]: resumed["data"]},
            )
    elif transition.kind == "wait":
        fields.update(
            status=RunStatus.WAITING,
            current_step=transition.target,
            waiting_for=transition.waiting_for,
            claim_token=None,
        )
    elif transition.kind == "finish":
        fields.update(
            status=RunStatus.SUCCEEDED,
            outcome=transition.outcome,
            finished_at=timezone.now(),
            claim_token=None,
        )
        if replay:
            fields["replay_verdict"] = "identical"
    else:
        fields.update(
            status=RunStatus.FAILED,
            error=transition.reason,
            finished_at=timezone.now(),
            claim_token=None,
        )
    return _commit(
        run,
        token,
        checkpoint,
        cp_status=CheckpointStatus.OK,
        cp_state_after=state,
        cp_transition=transition.as_json(),
        open_next=keep_going,
        **fields,
    )


def _commit_error(run, token, checkpoint, error: BaseException, policy: RetryPolicy) -> bool:
    """Retry a transient error after a backoff; otherwise escalate or fail, per the step."""
    message = f"{type(error).__name__}: {error}"[:4000]
    failed = {
        "cp_status": CheckpointStatus.ERROR,
        "cp_error": message,
        "error": message,
        "claim_token": None,
    }
    if is_transient(error) and checkpoint.attempt < policy.attempts:
        delay = _backoff(policy, checkpoint.attempt)
        now = timezone.now()
        committed = _commit(
            run,
            token,
            checkpoint,
            **failed,
            status=RunStatus.QUEUED,
            not_before=now + timedelta(seconds=delay),
            enqueued_at=now,
        )
        if committed:
            _enqueue(run, countdown=delay)
        return committed
    if policy.on_error == "escalate":
        question = f"Step {checkpoint.step!r} failed ({message}). Answer to retry it."
        outcome = {
            "status": RunStatus.WAITING,
            "waiting_for": {
                "kind": "escalation",
                "resume": checkpoint.step,
                "key": "answer",
                "question": question,
            },
        }
    else:
        outcome = {"status": RunStatus.FAILED, "finished_at": timezone.now()}
    return _commit(run, token, checkpoint, **failed, **outcome)


def _backoff(policy: RetryPolicy, attempt: int) -> float:
    """Exponential, capped, with jitter so retries of many runs do not arrive together."""
    ceiling = min(policy.max_backoff, policy.backoff * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


def _commit(
    run: Run,
    token,
    checkpoint: Checkpoint | None,
    *,
    cp_status: str | None = None,
    cp_error: str = "",
    cp_state_after: Any = None,
    cp_transition: Any = None,
    open_next: bool = False,
    **run_fields: Any,
) -> bool:
    """Writes the checkpoint's result and the run's new fields together, if we still hold it.

    The usual case is one statement (`checkpoints.close_step`), which also opens the next
    step's checkpoint when `open_next`: the attempt is recorded before the step runs, without
    a commit of its own. When that statement writes nothing, the slower path here finds out
    why: a cancel requested while the step ran (its result is kept, and the run stops), or a
    claim lost to the sweeper (nothing of ours is written over the new owner's work).
    """
    now = timezone.now()
    fields = {"heartbeat_at": now, **run_fields}
    checkpoint_fields = {
        "status": cp_status,
        "error": cp_error,
        "state_after": cp_state_after,
        "transition": cp_transition,
        "finished_at": now,
    }
    if checkpoint is not None:
        opens = open_next and fields.get("status", RunStatus.RUNNING) == RunStatus.RUNNING
        spec = (
            {
                "seq": fields.get("next_seq"),
                "step": fields.get("current_step"),
                "state": fields.get("state"),
            }
            if opens
            else None
        )
        written = close_step(
            run=run,
            token=token,
            checkpoint=checkpoint,
            checkpoint_fields=checkpoint_fields,
            run_fields=fields,
            open_next=spec,
        )
        if written:
            _apply(checkpoint, checkpoint_fields)
            _apply(run, fields)
            _announce(run)
            return True
    held = Run.objects.filter(pk=run.pk, claim_token=token, status=RunStatus.RUNNING)
    with transaction.atomic():
        updated = held.filter(cancel_requested=False).update(**fields)
        if not updated and held.filter(cancel_requested=True).exists():
            if fields.get("status", RunStatus.RUNNING) in ACTIVE_STATUSES:
                fields.update(
                    status=RunStatus.CANCELLED,
                    finished_at=now,
                    claim_token=None,
                    waiting_for=None,
                    cancel_requested=True,
                )
            updated = held.update(**fields)
        if checkpoint is not None:
            if not updated:
                checkpoint_fields.update(
                    status=CheckpointStatus.ERROR, error="the run was taken over by another worker"
                )
            _apply(checkpoint, checkpoint_fields)
            checkpoint.save(update_fields=list(checkpoint_fields))
        if not updated:
            return False
        _apply(run, fields)  # we hold the run: nobody else changed these
        _announce(run)
    return True


def _apply(instance, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        setattr(instance, name, value)


def _announce(run: Run) -> None:
    events.publish(run)
    _when_finished(run)


def _when_finished(run: Run) -> None:
    """Exports the finished run's trace, if a collector is configured."""
    if run.is_finished and settings.AIOS_OTEL_ENDPOINT:
        from agents.tasks import trace_export

        transaction.on_commit(lambda: trace_export.delay(run.pk))


class _Heartbeat:
    """Keeps the run's heartbeat fresh while a step runs, so the sweeper leaves it alone."""

    def __init__(self, run_id: int, token: uuid.UUID) -> None:
        self.run_id, self.token = run_id, token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(settings.AIOS_RUN_HEARTBEAT_SECONDS):
                Run.objects.filter(pk=self.run_id, claim_token=self.token).update(
                    heartbeat_at=timezone.now()
                )
        finally:
            connection.close()


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
        Checkpoint.objects.filter(
            run=locked, seq=locked.next_seq - 1, status=CheckpointStatus.OK
        ).update(resumed_with={"kind": kind, "data": data})
        _enqueue(locked)
        events.publish(locked)
    return locked


def run_answer(*, run: Run, answer: Any) -> Run:
    return run_resume(run=run, kind="escalation", data=answer)


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
        _when_finished(run)
    return run


# -- recovery and retention -------------------------------------------------------------------


def runs_sweep() -> dict[str, int]:
    """Re-enqueues runs of dead workers (stale heartbeat) and queued runs whose message got lost."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.AIOS_RUN_STALE_SECONDS)
    recovered = 0
    for run in Run.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=stale):
        with transaction.atomic():
            taken = Run.objects.filter(
                pk=run.pk, status=RunStatus.RUNNING, heartbeat_at__lt=stale
            ).update(status=RunStatus.QUEUED, claim_token=None, enqueued_at=now)
            if taken:
                Checkpoint.objects.filter(run=run, status=CheckpointStatus.RUNNING).update(
                    status=CheckpointStatus.ERROR,
                    error="worker lost; the run was recovered",
                    finished_at=now,
                )
                _enqueue(run)
                recovered += 1
    lost = now - timedelta(seconds=settings.AIOS_RUN_QUEUED_STALE_SECONDS)
    requeued = 0
    for run in Run.objects.filter(status=RunStatus.QUEUED, enqueued_at__lt=lost).filter(
        Q(not_before__isnull=True) | Q(not_before__lte=now)
    ):
        if Run.objects.filter(pk=run.pk, status=RunStatus.QUEUED, enqueued_at__lt=lost).update(
            enqueued_at=now
        ):
            _enqueue(run)  # a duplicate message is harmless: only one claim succeeds
            requeued += 1
    return {"recovered": recovered, "requeued": requeued}


def runs_prune(*, older_than_days: int | None = None) -> int:
    """Drops journal payloads of runs finished long ago; checkpoints, timings and costs stay."""
    days = settings.AIOS_RUN_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    return JournalEntry.objects.filter(run__finished_at__lt=cutoff, pruned=False).update(
        request={}, response=None, pruned=True
    )


# -- replay and fork --------------------------------------------------------------------------


class _ReplaySource:
    """What the original run did at one seq: the calls it made, its transition, its resume event."""

    def __init__(self, run: Run, seq: int) -> None:
        original = run.parent
        self.original = (
            Checkpoint.objects.filter(run=original, seq=seq, status=CheckpointStatus.OK)
            .order_by("-attempt")
            .first()
        )
        self.calls = list(
            JournalEntry.objects.filter(run=original, seq=seq, ok=True).order_by("position")
        )
        self.seq = seq

    def check_step(self, step_name: str) -> None:
        expected = self.original.step if self.original else None
        if expected != step_name:
            raise Divergence(
                step=step_name,
                seq=self.seq,
                position=None,
                expected={"step": expected},
                got={"step": step_name},
            )

    def check_result(self, context: StepContext, transition: Transition) -> None:
        if context.calls_made < len(self.calls):
            missing = self.calls[context.calls_made]
            raise Divergence(
                step=self.original.step,
                seq=self.seq,
                position=context.calls_made,
                expected={"kind": missing.kind, "name": missing.name, "request": missing.request},
                got=None,
            )
        if transition.as_json() != self.original.transition:
            raise Divergence(
                step=self.original.step,
                seq=self.seq,
                position=None,
                expected=self.original.transition,
                got=transition.as_json(),
            )

    def resumed_with(self) -> dict | None:
        return self.original.resumed_with if self.original else None


def run_replay(*, run: Run) -> Run:
    """A new run that re-executes `run` serving its journal: nothing external is called."""
    if not run.is_finished:
        raise Conflict(f"run {run.pk} has not finished; only finished runs can be replayed")
    first = run.checkpoints.order_by("seq", "attempt").first()
    if first is None:
        raise Conflict(f"run {run.pk} executed no step")
    with transaction.atomic():
        replay = Run.objects.create(
            workspace_id=run.workspace_id,
            agent_id=run.agent_id,
            trigger=Trigger.REPLAY,
            trigger_ref=str(run.pk),
            parent=run,
            priority=run.priority,
            input=run.input,
            current_step=first.step,
            next_seq=first.seq,
            state=first.state_before,
            enqueued_at=timezone.now(),
        )
        _enqueue(replay)
        events.publish(replay, created=True)
    return replay


def run_fork(*, run: Run, from_seq: int, state_patch: dict[str, Any]) -> Run:
    """A new live run that starts at checkpoint `from_seq` of `run` with a patched state."""
    checkpoint = run.checkpoints.filter(seq=from_seq).order_by("-attempt").first()
    if checkpoint is None:
        raise Conflict(f"run {run.pk} has no checkpoint {from_seq}")
    with transaction.atomic():
        fork = Run.objects.create(
            workspace_id=run.workspace_id,
            agent_id=run.agent_id,
            trigger=Trigger.FORK,
            trigger_ref=f"{run.pk}@{from_seq}",
            parent=run,
            forked_from=checkpoint,
            priority=run.priority,
            input=run.input,
            current_step=checkpoint.step,
            next_seq=from_seq,
            state={**checkpoint.state_before, **state_patch},
            enqueued_at=timezone.now(),
        )
        _enqueue(fork)
        events.publish(fork, created=True)
    return fork
