"""Engine semantics driven in this process: replay, fork, validation, sweeper, retention."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from agents.models import Checkpoint, JournalEntry, Run
from agents.pipelines import Pipeline, demo, fail, goto, register, step
from agents.services import (
    Conflict,
    run_advance,
    run_answer,
    run_fork,
    run_replay,
    run_start,
    runs_prune,
    runs_sweep,
)
from tests.agents.conftest import drive

pytestmark = pytest.mark.django_db


def finished_echo(make_agent, answer="yes") -> Run:
    run, _ = run_start(agent=make_agent("demo.echo"), input={"text": "hi"})
    run_answer(run=drive(run), answer=answer)
    return drive(run)


def test_a_replay_of_a_finished_run_is_identical_and_calls_nothing(make_agent):
    original = finished_echo(make_agent)

    replay = drive(run_replay(run=original))

    assert replay.trigger == "replay" and replay.parent == original
    assert replay.replay_verdict == "identical"
    assert replay.outcome == original.outcome == {"input": {"text": "hi"}, "answer": "yes"}
    assert not JournalEntry.objects.filter(run=replay).exists()  # everything was served


def test_a_replay_detects_code_that_calls_something_different(make_agent, monkeypatch):
    original = finished_echo(make_agent)

    def changed_start(self, ctx):  # reads the clock twice instead of clock then random
        return goto("ask", started_at=ctx.now(), luck=ctx.now(), input=ctx.input)

    monkeypatch.setattr(demo.Echo, "start", step()(changed_start))
    replay = drive(run_replay(run=original))

    [divergence] = replay.replay_verdict
    assert divergence["step"] == "start" and divergence["seq"] == 1 and divergence["position"] == 1
    assert divergence["expected"] == {"kind": "random", "name": "random", "request": {}}
    assert divergence["got"] == {"kind": "clock", "name": "now", "request": {}}


def test_a_replay_detects_a_changed_decision(make_agent, monkeypatch):
    original = finished_echo(make_agent)

    def changed_finish(self, ctx):
        return demo.finish({"answer": ctx.state["answer"].upper()})

    monkeypatch.setattr(demo.Echo, "finish", step()(changed_finish))
    replay = drive(run_replay(run=original))

    [divergence] = replay.replay_verdict
    assert (divergence["step"], divergence["position"]) == ("finish", None)
    assert divergence["expected"]["outcome"] == {"input": {"text": "hi"}, "answer": "yes"}
    assert divergence["got"]["outcome"] == {"answer": "YES"}


def test_aios_replay_prints_the_verdict(make_agent, capsys):
    original = finished_echo(make_agent)

    call_command("replay", str(original.pk))

    assert f"of run {original.pk}: identical" in capsys.readouterr().out


def test_only_finished_runs_can_be_replayed(make_agent):
    waiting = drive(run_start(agent=make_agent("demo.echo"), input={})[0])

    with pytest.raises(Conflict):
        run_replay(run=waiting)
    with pytest.raises(CommandError):
        call_command("replay", str(waiting.pk))


def test_a_fork_runs_live_from_a_checkpoint_with_the_patched_state(make_agent):
    original = finished_echo(make_agent, answer="yes")

    fork = drive(run_fork(run=original, from_seq=3, state_patch={"answer": "no"}))

    assert fork.trigger == "fork" and fork.parent == original and fork.forked_from.seq == 3
    assert fork.outcome == {"input": {"text": "hi"}, "answer": "no"}
    assert list(fork.checkpoints.values_list("seq", "step")) == [(3, "finish")]


def test_forking_from_a_checkpoint_that_does_not_exist_is_refused(make_agent):
    with pytest.raises(Conflict):
        run_fork(run=finished_echo(make_agent), from_seq=9, state_patch={})


@register
class Misbehaving(Pipeline):
    name = "test.misbehaving"

    @step()
    def start(self, ctx):
        return {"not": "a transition"} if ctx.input.get("garbage") else goto("nowhere")


@register
class Escalating(Pipeline):
    name = "test.escalating"

    @step()
    def start(self, ctx):
        return goto("work")

    @step(on_error="escalate")
    def work(self, ctx):
        if ctx.state.get("answer") != "fixed":
            raise ValueError("the supplier feed is malformed")
        return fail("stopped on purpose")


def test_a_step_that_returns_no_transition_fails_the_run_clearly(make_agent):
    run = drive(run_start(agent=make_agent("test.misbehaving"), input={"garbage": True})[0])

    assert run.status == "failed"
    assert run.error == "PermanentError: a step must return a transition, not dict"


def test_a_goto_to_an_unknown_step_fails_the_run(make_agent):
    run = drive(run_start(agent=make_agent("test.misbehaving"), input={})[0])

    assert run.error == "PermanentError: pipeline 'test.misbehaving' has no step 'nowhere'"


def test_a_pipeline_that_loops_is_stopped_by_the_step_limit(make_agent, settings):
    settings.AIOS_RUN_MAX_STEPS = 5

    run = drive(run_start(agent=make_agent("demo.loop"), input={})[0])

    assert run.status == "failed"
    assert run.error == "step limit reached: 5 steps (AIOS_RUN_MAX_STEPS)"
    assert run.state["rounds"] == 5
    assert list(Checkpoint.objects.filter(run=run).values_list("seq", "status"))[-2:] == [
        (5, "ok"),
        (6, "error"),
    ]


def test_a_step_that_escalates_on_error_waits_for_a_person_then_retries(make_agent):
    run = drive(run_start(agent=make_agent("test.escalating"), input={})[0])

    assert run.status == "waiting"
    assert run.waiting_for["question"].startswith("Step 'work' failed (ValueError: the supplier")
    run_answer(run=run, answer="fixed")
    run = drive(run)
    assert run.status == "failed" and run.error == "stopped on purpose"
    # The step was run again, not resumed past: no checkpoint claims the answer resumed it.
    assert not run.checkpoints.exclude(resumed_with=None).exists()


def test_the_waiting_step_records_what_resumed_it(make_agent):
    run = finished_echo(make_agent, answer="yes")

    assert list(run.checkpoints.exclude(resumed_with=None).values_list("step", "resumed_with")) == [
        ("ask", {"kind": "escalation", "data": "yes"})
    ]


def test_transient_errors_stop_being_retried_after_the_last_attempt(make_agent, key):
    run = drive(run_start(agent=make_agent("demo.flaky"), input={"key": key, "failures": 9})[0])

    assert run.status == "failed" and run.error.startswith("TransientError")
    assert list(run.checkpoints.values_list("attempt", flat=True)) == [1, 2, 3, 4]


def test_answering_a_run_that_is_not_waiting_is_a_conflict(make_agent):
    with pytest.raises(Conflict):
        run_answer(run=finished_echo(make_agent), answer="again")


def test_the_same_idempotency_key_returns_the_same_run(make_agent):
    agent = make_agent("demo.noop")

    first, created = run_start(agent=agent, input={"a": 1}, idempotency_key="order-1001")
    again, created_again = run_start(agent=agent, input={"a": 2}, idempotency_key="order-1001")

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk and again.input == {"a": 1}
    assert Run.objects.count() == 1


def test_a_disabled_agent_starts_no_run(make_agent):
    with pytest.raises(Conflict):
        run_start(agent=make_agent("demo.noop", enabled=False), input={})


def test_the_sweeper_recovers_runs_of_dead_workers_and_lost_messages(make_agent):
    agent = make_agent("demo.noop")
    stale = timezone.now() - timedelta(minutes=5)
    dead, _ = run_start(agent=agent, input={})
    Run.objects.filter(pk=dead.pk).update(
        status="running", enqueued_at=stale, lease_token=1, lease_attempts=1, lease_expires_at=stale
    )
    Checkpoint.objects.create(run=dead, seq=1, step="start", attempt=1, state_before={})
    lost, _ = run_start(agent=agent, input={})
    Run.objects.filter(pk=lost.pk).update(enqueued_at=stale)
    fresh, _ = run_start(agent=agent, input={})

    assert runs_sweep() == {"recovered": 1, "requeued": 1, "gave_up": 0, "renewed": 0}
    assert runs_sweep() == {"recovered": 0, "requeued": 0, "gave_up": 0, "renewed": 0}  # sent

    run_advance(run_id=dead.pk)  # the message sent again: its claim takes the run over
    dead.refresh_from_db()
    assert dead.status == "succeeded" and dead.lease_token == 2 and dead.lease_expires_at is None
    assert Checkpoint.objects.get(run=dead, seq=1, attempt=1).status == "error"
    assert list(dead.checkpoints.values_list("seq", "attempt")) == [(1, 1), (1, 2), (2, 1), (3, 1)]
    assert Run.objects.get(pk=fresh.pk).enqueued_at > stale


def test_retention_prunes_payloads_of_old_finished_runs_but_keeps_the_skeleton(make_agent):
    old = finished_echo(make_agent)
    Run.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=40))
    recent = finished_echo(make_agent)

    assert runs_prune(older_than_days=30) == 2  # the clock and random calls of the old run

    assert set(JournalEntry.objects.filter(run=old).values_list("pruned", "response")) == {
        (True, None)
    }
    assert not JournalEntry.objects.filter(run=recent, pruned=True).exists()
    assert old.checkpoints.count() == 3
