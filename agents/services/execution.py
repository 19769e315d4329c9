"""Executing runs: claim, run steps, commit each with the run's new state, retry, heartbeat.

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
import time
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import capfirst

from agents import events
from agents.checkpoints import claim_and_open, close_step
from agents.context import Cancelled, Divergence, StepContext
from agents.llm.budgets import BudgetReached
from agents.llm.gateway import ModelNotConfigured
from agents.models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    Checkpoint,
    CheckpointStatus,
    Run,
    RunStatus,
    Trigger,
)
from agents.pipelines import PermanentError, RetryPolicy, Transition, get_pipeline, is_transient
from agents.services.replay import ReplaySource
from agents.services.runs import enqueue, when_finished
from aios_site.core.renewer import renewer

logger = logging.getLogger(__name__)


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
                _commit(run, token, None, status=RunStatus.CANCELLED)
                break
            if not _execute_step(run, token, deadline=deadline):
                break
            if run.status == RunStatus.RUNNING and time.monotonic() > deadline:
                # Let other runs have the worker; this one continues from its next step.
                if _commit(run, token, None, status=RunStatus.QUEUED, enqueued_at=timezone.now()):
                    enqueue(run)
                break


def _execute_step(run: Run, token: uuid.UUID, *, deadline: float) -> bool:
    """Runs one attempt of the current step and commits what it led to. False: claim lost.

    The step's checkpoint was usually opened already, by the claim or by the commit that
    closed the step before; it records the attempt before anything runs.
    """
    try:
        pipeline = get_pipeline(run.agent.pipeline)
    except PermanentError as error:
        return _commit(run, token, None, status=RunStatus.FAILED, error=str(error))
    seq, step_name = run.next_seq, run.current_step
    policy = pipeline.retry_policy(step_name)
    checkpoint = run.__dict__.pop("opened_checkpoint", None)
    if checkpoint is None or checkpoint.seq != seq:
        attempt = Checkpoint.objects.filter(run=run, seq=seq).count() + 1
        checkpoint = Checkpoint.objects.create(
            run=run, seq=seq, step=step_name, attempt=attempt, state_before=run.state
        )
    if seq > settings.AIOS_RUN_MAX_STEPS:
        return _commit_step_limit(run, token, checkpoint)
    attempt = checkpoint.attempt
    if attempt > policy.attempts and _failed_attempts(run, seq) >= policy.attempts:
        # Earlier attempts failed or died with their worker (budget waits do not count).
        error = PermanentError(f"step {step_name!r} did not complete in {policy.attempts} attempts")
        return _commit_error(run, token, checkpoint, error, policy)
    replay = ReplaySource(run, seq) if run.trigger == Trigger.REPLAY else None
    context = StepContext(
        run=run,
        checkpoint=checkpoint,
        replay_of=replay.calls if replay else None,
        may_cache=not pipeline.proposes(step_name),
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
            run, token, checkpoint, cp_status=CheckpointStatus.CANCELLED, status=RunStatus.CANCELLED
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
        )
    except BudgetReached as refused:
        return _commit_budget_wait(run, token, checkpoint, refused)
    except ModelNotConfigured as missing:
        return _commit_model_wait(run, token, checkpoint, missing)
    except Exception as error:  # a step's failure is data about the run, never a crash
        if replay:  # a replay does not retry: it compares the failure with the original's
            return _commit(run, token, checkpoint, **replay.failure(error))
        logger.info("run %s step %s attempt %s failed: %r", run.pk, step_name, attempt, error)
        return _commit_error(run, token, checkpoint, error, policy)
    keep_going = transition.kind == "goto" and time.monotonic() < deadline
    return _commit_transition(run, token, checkpoint, context, transition, replay, keep_going)


def _commit_step_limit(run: Run, token: uuid.UUID, checkpoint: Checkpoint) -> bool:
    """A pipeline that keeps going to another step (a loop a model's answers keep alive, say)
    is stopped here, whatever its retry policy, rather than spending for ever."""
    message = f"step limit reached: {settings.AIOS_RUN_MAX_STEPS} steps (AIOS_RUN_MAX_STEPS)"
    return _commit(
        run,
        token,
        checkpoint,
        cp_status=CheckpointStatus.ERROR,
        cp_error=message,
        status=RunStatus.FAILED,
        error=message,
    )


def _failed_attempts(run: Run, seq: int) -> int:
    return Checkpoint.objects.filter(run=run, seq=seq, status=CheckpointStatus.ERROR).count()


def _commit_budget_wait(run, token, checkpoint, refused: BudgetReached) -> bool:
    """The run waits; raising the budget or the next period resumes it at the same step."""
    question = (
        f"Budget reached: {refused}. Raise it, or the run resumes when it renews at "
        f"{refused.renews_at:%Y-%m-%d %H:%M} UTC."
    )
    extra = {"renews_at": refused.renews_at.isoformat()}
    return _commit_stopped_step(run, token, checkpoint, "budget", refused, question, extra)


def _commit_model_wait(run, token, checkpoint, missing: ModelNotConfigured) -> bool:
    """Escalates: nothing can serve the capability, so a person must configure a model.
    Saving a provider or a policy resumes the run at the same step ("Try again" too)."""
    question = f"{capfirst(str(missing))}."
    extra = {"capability": missing.capability}
    return _commit_stopped_step(run, token, checkpoint, "model", missing, question, extra)


def _commit_stopped_step(run, token, checkpoint, kind, reason, question, extra) -> bool:
    """The step stopped before its end for want of something; the run waits for it and then
    runs the same step again (this attempt is not a failure)."""
    waiting = {"kind": kind, "resume": checkpoint.step, "key": kind, "question": question}
    return _commit(
        run,
        token,
        checkpoint,
        cp_status=CheckpointStatus.WAITING,
        cp_error=str(reason),
        status=RunStatus.WAITING,
        waiting_for={**waiting, **extra},
    )


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
            fields.update(status=RunStatus.SUCCEEDED, replay_verdict="identical")
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
        )
    elif transition.kind == "finish":
        fields.update(status=RunStatus.SUCCEEDED, outcome=transition.outcome)
        if replay:
            fields["replay_verdict"] = "identical"
    else:
        fields.update(status=RunStatus.FAILED, error=transition.reason)
        if replay:  # the same `fail` as the original's: check_result compared them
            fields["replay_verdict"] = "identical"
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
    failed = {"cp_status": CheckpointStatus.ERROR, "cp_error": message, "error": message}
    if is_transient(error) and checkpoint.attempt < policy.attempts:
        # A server that says when to come back (429 Retry-After) is believed over our backoff.
        delay = max(_backoff(policy, checkpoint.attempt), getattr(error, "retry_after", 0) or 0)
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
            enqueue(run, countdown=delay)
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
        outcome = {"status": RunStatus.FAILED}
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

    A new status other than `running` releases the claim; a finished one stamps `finished_at`.

    The usual case is one statement (`checkpoints.close_step`), which also opens the next
    step's checkpoint when `open_next`: the attempt is recorded before the step runs, without
    a commit of its own. When that statement writes nothing, the slower path here finds out
    why: a cancel requested while the step ran (its result is kept, and the run stops), or a
    claim lost to the sweeper (nothing of ours is written over the new owner's work).
    """
    now = timezone.now()
    fields = {"heartbeat_at": now, **run_fields}
    status = fields.get("status", RunStatus.RUNNING)
    if status != RunStatus.RUNNING:  # leaving `running` releases the claim
        fields.setdefault("claim_token", None)
    if status in FINISHED_STATUSES:
        fields.setdefault("finished_at", now)
    checkpoint_fields = {
        "status": cp_status,
        "error": cp_error,
        "state_after": cp_state_after,
        "transition": cp_transition,
        "finished_at": now,
    }
    if checkpoint is not None:
        opens = open_next and status == RunStatus.RUNNING
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
    when_finished(run)


class _Heartbeat:
    """Keeps the run's heartbeat fresh while a step runs, so the sweeper leaves it alone.

    It beats from the worker's renewer process (aios_site/core/renewer.py), not a thread of
    this one: a step holding the GIL in one long call cannot starve it, while a worker paused
    by SIGSTOP stops beating and loses the run, whose late writes its claim token fences off.
    """

    def __init__(self, run_id: int, token: uuid.UUID) -> None:
        self.key = f"run:{run_id}:{token}"
        self.sql = (
            f"UPDATE {Run._meta.db_table} SET heartbeat_at = now() "  # noqa: S608 - the model's table
            "WHERE id = %s AND claim_token = %s::uuid"
        )
        self.params = [run_id, str(token)]

    def __enter__(self) -> _Heartbeat:
        every = settings.AIOS_RUN_HEARTBEAT_SECONDS
        renewer().hold(self.key, self.sql, self.params, every=every)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        renewer().drop(self.key)
