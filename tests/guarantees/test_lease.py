"""The one lease (aios_site/core/lease.py): renewal a busy step cannot starve, and a model-based
test of the lease and the commit protocol, operations in any order."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from aios_site.core import lease
from aios_site.core.errors import LeaseLost
from aios_site.core.renewer import _dsn
from approvals.models import Proposal
from tests.helpers import pending_proposal

pytestmark = pytest.mark.django_db(transaction=True)

WATCHER = textwrap.dedent(
    """
    import json, sys, time
    import psycopg
    dsn, pk, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    seen, stolen = [], 0
    with psycopg.connect(dsn, autocommit=True) as db:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            held = db.execute(
                "SELECT lease_expires_at > now() FROM approvals_proposal WHERE id = %s", [pk]
            ).fetchone()[0]
            seen.append(bool(held))
            # what another worker's claim would do: take it if it ran out
            stolen += db.execute(
                "UPDATE approvals_proposal SET lease_token = lease_token "
                "WHERE id = %s AND lease_expires_at < now()", [pk]
            ).rowcount
            time.sleep(0.1)
    print(json.dumps({"seen": seen, "stolen": stolen}))
    """
)


def _commit_kind(seconds: float = 1.0, attempts: int = 3) -> lease.LeaseKind:
    return lease.LeaseKind(
        name="test commit",
        model=Proposal,
        seconds=seconds,
        max_attempts=attempts,
        claimable=Q(status="approved"),
    )


def test_a_step_holding_the_gil_in_one_long_call_keeps_its_lease(make_agent):
    proposal = pending_proposal(make_agent("demo.echo"), status="approved")
    kind = _commit_kind(seconds=1.0)
    with lease.held(kind, proposal.pk) as held:
        assert held is not None
        watcher = subprocess.Popen(
            [sys.executable, "-c", WATCHER, _dsn(connection.get_connection_params()),
             str(proposal.pk), "3.5"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        # One C call that never lets go of the GIL for about four seconds, four leases.
        started = timezone.now()
        assert re.match(r"(a+)+$", "a" * 27 + "!") is None
        assert timezone.now() - started > timedelta(seconds=3)
        report = json.loads(watcher.communicate(timeout=30)[0])

    assert report["stolen"] == 0
    assert len(report["seen"]) > 10 and all(report["seen"])


def test_a_lease_that_ran_out_is_claimed_again_with_a_higher_token_and_the_old_is_fenced(
    make_agent,
):
    proposal = pending_proposal(make_agent("demo.echo"), status="approved")
    kind = _commit_kind()
    first = lease.claim(kind, proposal.pk)
    assert lease.claim(kind, proposal.pk) is None  # held
    Proposal.objects.filter(pk=proposal.pk).update(lease_expires_at=timezone.now())
    second = lease.claim(kind, proposal.pk)

    assert second.token > first.token and second.attempt == 2
    assert not first.write(error="late")
    with pytest.raises(LeaseLost), lease.acting(first):
        lease.guard()
    assert second.release(error="mine")
    assert Proposal.objects.get(pk=proposal.pk).error == "mine"


class CommitProtocol(RuleBasedStateMachine):
    """Holders claim, renew, lose (expire), send, record and write late in any order; a
    sweep gives up on a row without attempts left. At most one effect per proposal reaches a
    receiver that applies each idempotency key once; nothing is sent after the outcome is
    recorded; no write succeeds with a token that is not the current one."""

    agent = None

    @initialize()
    def start(self) -> None:
        self.kind = _commit_kind(seconds=60, attempts=3)
        self.pk = pending_proposal(self.agent, status="approved").pk
        self.holders: list[lease.Lease] = []
        self.sends_after_outcome = 0
        self.applied_keys: set[str] = set()
        self.stale_writes = 0
        self.outcomes = 0

    def _row(self) -> Proposal:
        return Proposal.objects.get(pk=self.pk)

    def _holder(self, index: int) -> lease.Lease | None:
        return self.holders[index % len(self.holders)] if self.holders else None

    @rule()
    def claim(self) -> None:
        taken = lease.claim(self.kind, self.pk)
        if taken is not None:
            self.holders.append(taken)

    @rule(index=st.integers(0, 9))
    def renew(self, index: int) -> None:
        holder = self._holder(index)
        if holder is not None:
            holder.renew()

    @rule()
    def expire(self) -> None:
        Proposal.objects.filter(pk=self.pk, lease_expires_at__isnull=False).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )

    @rule(index=st.integers(0, 9))
    def send(self, index: int) -> None:
        holder = self._holder(index)
        if holder is None:
            return
        try:
            with lease.acting(holder):
                lease.guard()
        except LeaseLost:
            return
        if self._row().status != "approved":
            self.sends_after_outcome += 1
        self.applied_keys.add(f"aios-proposal-{self.pk}")  # one key for every attempt

    @rule(index=st.integers(0, 9))
    def record(self, index: int) -> None:
        holder = self._holder(index)
        if holder is None:
            return
        current = self._row().lease_token
        if (
            holder.fenced()
            .filter(status="approved")
            .update(status="committed", lease_expires_at=None)
        ):
            self.outcomes += 1
            if holder.token != current:
                self.stale_writes += 1

    @rule(index=st.integers(0, 9))
    def late_write(self, index: int) -> None:
        holder = self._holder(index)
        if holder is None:
            return
        current = self._row().lease_token
        if holder.write(error=f"written by token {holder.token}") and holder.token != current:
            self.stale_writes += 1

    @rule()
    def sweep(self) -> None:
        def give_up(final: lease.Lease) -> None:
            if (
                final.fenced()
                .filter(status="approved")
                .update(status="failed", lease_expires_at=None)
            ):
                self.outcomes += 1

        lease.expired_sweep(
            lease.LeaseKind(
                name="test commit",
                model=Proposal,
                seconds=60,
                max_attempts=3,
                claimable=Q(status="approved", pk=self.pk),  # this example's row only
                on_exhausted=give_up,
            )
        )

    @invariant()
    def at_most_one_effect_and_no_stale_write(self) -> None:
        if not hasattr(self, "pk"):
            return
        row = self._row()
        assert len(self.applied_keys) <= 1
        assert self.sends_after_outcome == 0
        assert self.stale_writes == 0
        assert self.outcomes <= 1
        assert row.lease_attempts <= 3
        tokens = [holder.token for holder in self.holders]
        assert tokens == sorted(set(tokens))  # every claim a higher token


def test_the_lease_and_commit_protocol_hold_in_any_order_of_operations(make_agent):
    CommitProtocol.agent = make_agent("demo.echo")
    run_state_machine_as_test(
        CommitProtocol,
        settings=hypothesis_settings(
            max_examples=60,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )


def test_an_import_chunk_of_a_worker_that_lost_its_lease_writes_nothing(workspace, owner):
    from memory.models import MemoryImport, MemoryItem
    from memory.services import (
        _import_chunk,
        _importing,
        memory_import_advance,
        memory_import_start,
    )

    rows = "\n".join(f'{{"key": "k-{n}", "content": "Fact {n}."}}' for n in range(450))
    job = memory_import_start(
        workspace=workspace, user=owner, filename="facts.jsonl", data=rows.encode(),
        namespace="facts", kind="fact",
    )  # fmt: skip
    paused = lease.claim(_importing(), job.pk)  # a worker that claims it, then is paused
    MemoryImport.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now())
    memory_import_advance(import_id=job.pk)  # another takes over and writes it all

    assert _import_chunk(paused) is False  # the paused one wakes: nothing of it is written
    done = MemoryImport.objects.get(pk=job.pk)
    assert (done.status, done.done, done.created) == ("done", 450, 450)
    assert MemoryItem.objects.filter(workspace=workspace, namespace="facts").count() == 450
    assert done.lease_attempts == 2 and done.lease_token == paused.token + 1
