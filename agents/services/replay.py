"""Replay (re-execute from the journal, calling nothing) and fork (a live run from a checkpoint)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents import events
from agents.context import Divergence, ReplayedFailure, StepContext
from agents.models import (
    Checkpoint,
    CheckpointStatus,
    JournalEntry,
    Run,
    RunStatus,
    Trigger,
)
from agents.pipelines import Transition
from agents.services.runs import Conflict, enqueue

# -- replay and fork --------------------------------------------------------------------------


class ReplaySource:
    """What the original run did at one seq: the calls it made, its transition, its resume event.

    Where the original run failed (its last step), the last attempt is the one replayed: the
    calls it completed, and the call that failed, which fails again with its recorded error.
    """

    def __init__(self, run: Run, seq: int) -> None:
        original = run.parent
        checkpoints = Checkpoint.objects.filter(run=original, seq=seq).order_by("-attempt")
        self.original = checkpoints.filter(status=CheckpointStatus.OK).first()
        if self.original is None and original.status == RunStatus.FAILED:
            self.original = checkpoints.filter(status=CheckpointStatus.ERROR).first()
        journal = JournalEntry.objects.filter(run=original, seq=seq)
        failed = self.original is not None and self.original.status == CheckpointStatus.ERROR
        if failed:
            journal = journal.filter(Q(ok=True) | Q(checkpoint=self.original))
        else:
            journal = journal.filter(ok=True)
        self.calls = list(journal.order_by("position"))
        self.seq = seq

    @property
    def failed_with(self) -> str | None:
        """The error the original run failed with at this seq, if it did."""
        if self.original is None or self.original.status != CheckpointStatus.ERROR:
            return None
        return self.original.error

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
        if self.failed_with is not None:
            raise Divergence(
                step=self.original.step,
                seq=self.seq,
                position=None,
                expected={"error": self.failed_with},
                got=transition.as_json(),
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

    def failure(self, error: BaseException) -> dict[str, Any]:
        """How the replay ends when its step raised `error`: failed as the original did (same
        step, same error), or diverged. A replay never retries: it would fail the same way."""
        if isinstance(error, ReplayedFailure):
            got = error.recorded
        else:
            got = f"{type(error).__name__}: {error}"[:4000]
        expected = self.failed_with
        # A journaled call's error is kept to 2000 characters, a step's to 4000.
        if expected is not None and got[:2000] == expected[:2000]:
            return {
                "cp_status": CheckpointStatus.ERROR,
                "cp_error": expected,
                "status": RunStatus.FAILED,
                "error": expected,
                "replay_verdict": "identical",
            }
        divergence = Divergence(
            step=self.original.step if self.original else "",
            seq=self.seq,
            position=None,
            expected={"error": expected} if expected is not None else self._expected_transition(),
            got={"error": got},
        )
        return {
            "cp_status": CheckpointStatus.ERROR,
            "cp_error": "replay diverged",
            "status": RunStatus.SUCCEEDED,
            "replay_verdict": [divergence.as_json()],
        }

    def _expected_transition(self) -> Any:
        return self.original.transition if self.original else None


def run_replay(*, run: Run) -> Run:
    """A new run that re-executes `run` serving its journal: nothing external is called."""
    if not run.is_finished:
        raise Conflict(f"run {run.pk} has not finished; only finished runs can be replayed")
    first = run.checkpoints.order_by("seq", "attempt").first()
    if first is None:
        raise Conflict(f"run {run.pk} executed no step")
    return _derived_run(
        run=run,
        trigger=Trigger.REPLAY,
        trigger_ref=str(run.pk),
        start=first,
        state=first.state_before,
    )


def run_fork(*, run: Run, from_seq: int, state_patch: dict[str, Any]) -> Run:
    """A new live run that starts at checkpoint `from_seq` of `run` with a patched state."""
    checkpoint = run.checkpoints.filter(seq=from_seq).order_by("-attempt").first()
    if checkpoint is None:
        raise Conflict(f"run {run.pk} has no checkpoint {from_seq}")
    return _derived_run(
        run=run,
        trigger=Trigger.FORK,
        trigger_ref=f"{run.pk}@{from_seq}",
        start=checkpoint,
        state={**checkpoint.state_before, **state_patch},
        forked_from=checkpoint,
    )


def _derived_run(
    *,
    run: Run,
    trigger: str,
    trigger_ref: str,
    start: Checkpoint,
    state: dict[str, Any],
    forked_from: Checkpoint | None = None,
) -> Run:
    """A queued run of the same agent and input that begins at `start`'s step."""
    with transaction.atomic():
        derived = Run.objects.create(
            workspace_id=run.workspace_id,
            agent_id=run.agent_id,
            trigger=trigger,
            trigger_ref=trigger_ref,
            parent=run,
            forked_from=forked_from,
            priority=run.priority,
            input=run.input,
            current_step=start.step,
            next_seq=start.seq,
            state=state,
            enqueued_at=timezone.now(),
        )
        enqueue(derived)
        events.publish(derived, created=True)
    return derived
