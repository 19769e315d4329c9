"""Two attempts of one step at once: the worker of the first only seemed dead (its heartbeat
stalled), the sweeper gave the run to a second, and the first finished what it was doing
anyway. Found by the chaos runs (the run failed on the journal's unique call); here each
case is set up directly."""

from __future__ import annotations

import pytest

from agents.context import StepContext
from agents.models import Checkpoint, JournalEntry
from agents.pipelines import Transition
from agents.services import run_start
from approvals.models import Proposal
from approvals.services import proposal_create

# Steps run in autocommit, as on a worker: each journal entry commits on its own.
pytestmark = [pytest.mark.slow, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]


def _attempts(run, step: str = "start") -> tuple[StepContext, StepContext]:
    first, second = (
        Checkpoint.objects.create(run=run, seq=1, step=step, attempt=n, state_before={})
        for n in (1, 2)
    )
    return (
        StepContext(run=run, checkpoint=first, replay_of=None),
        StepContext(run=run, checkpoint=second, replay_of=None),
    )


def test_an_attempt_whose_call_another_attempt_journaled_first_gets_the_answer_kept(make_agent):
    run, _ = run_start(agent=make_agent("demo.echo"), input={"text": "hi"})
    taken_over, taking_over = _attempts(run)  # the second found no completed call yet

    kept = taken_over.now()
    answer = taking_over.now()

    assert answer == kept
    assert list(JournalEntry.objects.filter(run=run).values_list("ok", "response")) == [
        (True, kept)
    ]


def test_a_retried_step_finds_the_proposal_an_attempt_made_before_it_died(make_agent):
    agent = make_agent("demo.propose", allowed_effectors=["core.note"])
    run, _ = run_start(agent=agent, input={"effector": "core.note"})
    _, retry = _attempts(run, step="propose")
    payload = {"namespace": "notes", "key": "restock", "content": "Order more mugs."}
    made = proposal_create(
        run=run, seq=1, step="propose", effector="core.note", target="note", payload=payload
    )  # committed; its worker died before journaling it

    transition = retry.propose("core.note", target="note", payload=payload, resume="done")

    assert isinstance(transition, Transition)
    assert transition.kind == "wait"
    assert transition.waiting_for["proposal"] == made.pk
    assert Proposal.objects.filter(run=run).count() == 1
