"""Executing runs: claim a slice under the run's lease, run steps, commit each with the run's
new state, retry.

Invariants:
- Only the worker holding a run's lease (aios_site/core/lease.py) writes its progress; every
  write is fenced by the lease's token, and the lease is renewed from the worker's renewer
  process while the slice runs.
- A checkpoint's result commits in the same transaction as the run's new status and state,
  and the next enqueue happens on commit.
- Journal entries commit as each call returns, so a retried step reuses them. They are not
  fenced: a call that a holder which lost its lease made is a fact, kept once at its
  position, and reused by the holder that took over instead of calling again.
"""

from __future__ import annotations

import json
import logging
import random
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.text import capfirst

from agents import events
from agents.checkpoints import LOST, claim_and_open, close_step
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
from aios_site.core import lease
from aios_site.core.errors import Unavailable
from aios_site.core.renewer import renewer

logger = logging.getLogger(__name__)


# -- the lease of a run's slice ---------------------------------------------------------------


def slice_lease() -> lease.LeaseKind:
    """A worker executes a run a slice at a time (until it waits, ends, or used
    AIOS_RUN_SLICE_SECONDS), each slice under a claim of the run's lease: a due queued run, or
    a running one whose holder let the lease run out (it died or was paused), is claimed with
    a new fencing token; the lease lasts AIOS_RUN_STALE_SECONDS and is renewed by the worker's
    renewer process while the slice runs.

    An attempt, for a run, is a claim that has not yet committed anything: every committed
    step (done, failed and retried later, waiting, finished, or the slice's yield) is progress
    and sets `lease_attempts` back to zero. What it counts is thus the claims in a row whose
    worker died or lost the run before it committed a step; a long run of many slices never
    runs out, while a poison run (one that kills its worker before its step's own retry limit
    can be checked: a state too big to load, a crash in the engine, a step retried without
    end) fails after AIOS_RUN_MAX_CLAIMS such claims, with the reason."""
    return lease.LeaseKind(
        name="run slice",
        model=Run,
        seconds=settings.AIOS_RUN_STALE_SECONDS,
        max_attempts=settings.AIOS_RUN_MAX_CLAIMS,
        claimable=(
            Q(status=RunStatus.QUEUED) & (Q(not_before__isnull=True) | Q(not_before__lte=Now()))
            | Q(status=RunStatus.RUNNING)
        ),
        on_exhausted=_slice_gave_up,
        on_expired=send_again,
    )


def _slice_gave_up(held: lease.Lease) -> None:
    """Fails a run that ran out of claims, under a final lease that fences off every earlier
    holder; the step its last holder left open is marked lost."""
    claims = held.kind.max_attempts
    message = (
        f"gave up after {claims} claims in a row that each ended without committing a step "
        "(AIOS_RUN_MAX_CLAIMS): every worker that took the run died or lost it mid-step"
    )
    now = timezone.now()
    with transaction.atomic():
        if not held.release(status=RunStatus.FAILED, error=message, finished_at=now):
            return
        Checkpoint.objects.filter(run_id=held.pk, status=CheckpointStatus.RUNNING).update(
            status=CheckpointStatus.ERROR, error=LOST, finished_at=now
        )
    _announce(Run.objects.get(pk=held.pk))


def send_again(pk: int) -> str:
    """Sends a run's message again, if it was not sent since its lease ran out (or, for a
    queued run, for AIOS_RUN_QUEUED_STALE_SECONDS): a duplicate is harmless, only one claim
    wins, but a sweep every few seconds must not pile them up. Returns the status it was sent
    in, or "" when it was not sent."""
    now = timezone.now()
    lost = now - timedelta(seconds=settings.AIOS_RUN_QUEUED_STALE_SECONDS)
    unsent = (
        Q(enqueued_at__isnull=True)
        | Q(enqueued_at__lt=lost)
        | Q(status=RunStatus.RUNNING, enqueued_at__lt=F("lease_expires_at"))
    )
    run = Run.objects.filter(pk=pk).only("pk", "priority", "status").first()
    if run is None or not Run.objects.filter(unsent, pk=pk).update(enqueued_at=now):
        return ""
    enqueue(run)
    return run.status


# -- executing --------------------------------------------------------------------------------


def run_advance(*, run_id: int) -> None:
    """Claims a slice of the run and executes its steps until it waits, ends, or the slice's
    time is used."""
    claimed = claim_and_open(run_id=run_id, kind=slice_lease())
    if claimed is None:
        return  # another worker has it, it is not due, it is no longer queued, or out of claims
    run, held = claimed
    events.publish(run)
    deadline = time.monotonic() + settings.AIOS_RUN_SLICE_SECONDS
    held.keep_renewed()
    try:
        with lease.acting(held):
            _advance(run, held, deadline=deadline)
    finally:
        renewer().drop(held.key)


def _advance(run: Run, held: lease.Lease, *, deadline: float) -> None:
    while run.status == RunStatus.RUNNING:
        if run.cancel_requested:
            _commit(run, held, None, status=RunStatus.CANCELLED)
            break
        if not _execute_step(run, held, deadline=deadline):
            break
        if run.status == RunStatus.RUNNING and time.monotonic() > deadline:
            # Let other runs have the worker; this one continues from its next step.
            if _commit(run, held, None, status=RunStatus.QUEUED, enqueued_at=timezone.now()):
                enqueue(run)
            break


def _execute_step(run: Run, held: lease.Lease, *, deadline: float) -> bool:
    """Runs one attempt of the current step and commits what it led to. False: lease lost.

    The step's checkpoint was usually opened already, by the claim or by the commit that
    closed the step before; it records the attempt before anything runs.
    """
    try:
        pipeline = get_pipeline(run.agent.pipeline)
    except PermanentError as error:
        return _commit(run, held, None, status=RunStatus.FAILED, error=str(error))
    seq, step_name = run.next_seq, run.current_step
    policy = pipeline.retry_policy(step_name)
    checkpoint = run.__dict__.pop("opened_checkpoint", None)
    if checkpoint is None or checkpoint.seq != seq:
        attempt = Checkpoint.objects.filter(run=run, seq=seq).count() + 1
        checkpoint = Checkpoint.objects.create(
            run=run, seq=seq, step=step_name, attempt=attempt, state_before=run.state
        )
    if seq > settings.AIOS_RUN_MAX_STEPS:
        return _commit_step_limit(run, held, checkpoint)
    attempt = checkpoint.attempt
    if attempt > policy.attempts and _failed_attempts(run, seq) >= policy.attempts:
        # Earlier attempts failed or died with their worker (budget waits do not count).
        error = PermanentError(f"step {step_name!r} did not complete in {policy.attempts} attempts")
        return _commit_error(run, held, checkpoint, error, policy)
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
            run, held, checkpoint, cp_status=CheckpointStatus.CANCELLED, status=RunStatus.CANCELLED
        )
    except Divergence as divergence:
        return _commit(
            run,
            held,
            checkpoint,
            cp_status=CheckpointStatus.ERROR,
            cp_error="replay diverged",
            status=RunStatus.SUCCEEDED,
            replay_verdict=[divergence.as_json()],
        )
    except BudgetReached as refused:
        return _commit_budget_wait(run, held, checkpoint, refused)
    except ModelNotConfigured as missing:
        return _commit_model_wait(run, held, checkpoint, missing)
    except Unavailable as down:
        if replay:
            return _commit(run, held, checkpoint, **replay.failure(down))
        return _commit_unavailable_wait(run, held, checkpoint, down)
    except Exception as error:  # a step's failure is data about the run, never a crash
        if replay:  # a replay does not retry: it compares the failure with the original's
            return _commit(run, held, checkpoint, **replay.failure(error))
        logger.info("run %s step %s attempt %s failed: %r", run.pk, step_name, attempt, error)
        return _commit_error(run, held, checkpoint, error, policy)
    keep_going = transition.kind == "goto" and time.monotonic() < deadline
    return _commit_transition(run, held, checkpoint, context, transition, replay, keep_going)


def _commit_step_limit(run: Run, held: lease.Lease, checkpoint: Checkpoint) -> bool:
    """A pipeline that keeps going to another step (a loop a model's answers keep alive, say)
    is stopped here, whatever its retry policy, rather than spending for ever."""
    message = f"step limit reached: {settings.AIOS_RUN_MAX_STEPS} steps (AIOS_RUN_MAX_STEPS)"
    return _commit(
        run,
        held,
        checkpoint,
        cp_status=CheckpointStatus.ERROR,
        cp_error=message,
        status=RunStatus.FAILED,
        error=message,
    )


def _failed_attempts(run: Run, seq: int) -> int:
    return Checkpoint.objects.filter(run=run, seq=seq, status=CheckpointStatus.ERROR).count()


def _failed_before(run: Run, checkpoint: Checkpoint, policy: RetryPolicy) -> int:
    """The step's failed attempts before this one: waits (a budget, a model endpoint down)
    are attempts in the numbering, not failures. Counted only once the numbering alone would
    exhaust the step's attempts (the usual case costs no query)."""
    if checkpoint.attempt < policy.attempts:
        return checkpoint.attempt - 1
    return _failed_attempts(run, checkpoint.seq)


def _commit_budget_wait(run, held, checkpoint, refused: BudgetReached) -> bool:
    """The run waits; raising the budget or the next period resumes it at the same step."""
    question = (
        f"Budget reached: {refused}. Raise it, or the run resumes when it renews at "
        f"{refused.renews_at:%Y-%m-%d %H:%M} UTC."
    )
    extra = {"renews_at": refused.renews_at.isoformat()}
    return _commit_stopped_step(run, held, checkpoint, "budget", refused, question, extra)


def _commit_model_wait(run, held, checkpoint, missing: ModelNotConfigured) -> bool:
    """Escalates: nothing can serve the capability, so a person must configure a model.
    Saving a provider or a policy resumes the run at the same step ("Try again" too)."""
    question = f"{capfirst(str(missing))}."
    extra = {"capability": missing.capability}
    return _commit_stopped_step(run, held, checkpoint, "model", missing, question, extra)


def _commit_unavailable_wait(run, held, checkpoint, down: Unavailable) -> bool:
    """A service the step needs is down: the run is queued for when it may be back, and says
    why on its page; this attempt is not a failure (the step's retries are kept for errors)."""
    said = str(down)[:4000]
    return _commit_requeued(
        run,
        held,
        checkpoint,
        down.retry_after or 5.0,
        cp_status=CheckpointStatus.WAITING,
        cp_error=said,
        error=said,
    )


def _commit_requeued(run, held, checkpoint, delay: float, **fields: Any) -> bool:
    """The step's result, and the run queued again to be taken up in `delay` seconds."""
    now = timezone.now()
    committed = _commit(
        run,
        held,
        checkpoint,
        **fields,
        status=RunStatus.QUEUED,
        not_before=now + timedelta(seconds=delay),
        enqueued_at=now,
    )
    if committed:
        enqueue(run, countdown=delay)
    return committed


def _commit_stopped_step(run, held, checkpoint, kind, reason, question, extra) -> bool:
    """The step stopped before its end for want of something; the run waits for it and then
    runs the same step again (this attempt is not a failure)."""
    waiting = {"kind": kind, "resume": checkpoint.step, "key": kind, "question": question}
    return _commit(
        run,
        held,
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


def _commit_transition(run, held, checkpoint, context, transition, replay, keep_going) -> bool:
    state = {**context.state, **transition.updates}
    fields: dict[str, Any] = {
        "state": state,
        "next_seq": checkpoint.seq + 1,
        "error": "",  # an earlier attempt's error is history now (its checkpoint keeps it)
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
        held,
        checkpoint,
        cp_status=CheckpointStatus.OK,
        cp_state_after=state,
        cp_transition=transition.as_json(),
        open_next=keep_going,
        **fields,
    )


def _commit_error(run, held, checkpoint, error: BaseException, policy: RetryPolicy) -> bool:
    """Retry a transient error after a backoff; otherwise escalate or fail, per the step."""
    message = f"{type(error).__name__}: {error}"[:4000]
    failed = {"cp_status": CheckpointStatus.ERROR, "cp_error": message, "error": message}
    if is_transient(error) and _failed_before(run, checkpoint, policy) + 1 < policy.attempts:
        # A server that says when to come back (429 Retry-After) is believed over our backoff.
        delay = max(_backoff(policy, checkpoint.attempt), getattr(error, "retry_after", 0) or 0)
        return _commit_requeued(run, held, checkpoint, delay, **failed)
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
    return _commit(run, held, checkpoint, **failed, **outcome)


def _backoff(policy: RetryPolicy, attempt: int) -> float:
    """Exponential, capped, with jitter so retries of many runs do not arrive together."""
    ceiling = min(policy.max_backoff, policy.backoff * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


def _commit(
    run: Run,
    held: lease.Lease,
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

    A new status other than `running` releases the lease; a finished one stamps `finished_at`.

    The usual case is one statement (`checkpoints.close_step`), which also opens the next
    step's checkpoint when `open_next`: the attempt is recorded before the step runs, without
    a commit of its own. When that statement writes nothing, the slower path here finds out
    why: a cancel requested while the step ran (its result is kept, and the run stops), or a
    lease taken over by another worker (nothing of ours is written over its work).
    """
    now = timezone.now()
    # Whatever is committed is progress: the claims that died before it stop counting.
    fields = {"lease_attempts": 0, **run_fields}
    status = fields.get("status", RunStatus.RUNNING)
    if status != RunStatus.RUNNING:  # leaving `running` releases the lease
        fields.setdefault("lease_expires_at", None)
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
            token=held.token,
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
    ours = held.fenced().filter(status=RunStatus.RUNNING)
    with transaction.atomic():
        updated = ours.filter(cancel_requested=False).update(**fields)
        if not updated and ours.filter(cancel_requested=True).exists():
            if fields.get("status", RunStatus.RUNNING) in ACTIVE_STATUSES:
                fields.update(
                    status=RunStatus.CANCELLED,
                    finished_at=now,
                    lease_expires_at=None,
                    waiting_for=None,
                    cancel_requested=True,
                )
            updated = ours.update(**fields)
        if checkpoint is not None:
            if not updated:
                checkpoint_fields.update(
                    status=CheckpointStatus.ERROR, error="the run was taken over by another worker"
                )
            _apply(checkpoint, checkpoint_fields)
            # Only a step still open is ours to close: one the new holder marked lost when it
            # took the run over stays as it is (a holder that lost its lease changes nothing).
            Checkpoint.objects.filter(pk=checkpoint.pk, status=CheckpointStatus.RUNNING).update(
                **checkpoint_fields
            )
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
