"""Replay (re-execute from the journal, calling nothing) and fork (a live run from a checkpoint)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from agents import events
from agents.context import Divergence, StepContext
from agents.models import (
    Checkpoint,
    CheckpointStatus,
    JournalEntry,
    Run,
    Trigger,
)
from agents.pipelines import Transition
from agents.services.runs import Conflict, enqueue

# -- replay and fork --------------------------------------------------------------------------


class ReplaySource:
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
