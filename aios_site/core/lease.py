"""One lease for every piece of claimed work.

A row that work is done for (a proposal to commit, a post to publish, an import to write, a
slice of a run to execute) carries its lease in three columns (`Leased`):

- `lease_token`: the **fencing token**, raised by one at every claim. Work done under a
  lease is written only `WHERE lease_token = <ours>` (Kleppmann's fencing token): a holder
  that was paused or too slow, and whose work was taken over, can no longer write anything.
- `lease_expires_at`: until when the holder has it. A holder renews it while the work is in
  flight (from the renewer process, which a busy step cannot starve); null when released.
- `lease_attempts`: how many times the work was claimed, **in the row**, so a limit holds
  across sweeps, workers and Celery retry chains alike.

A kind of work registers a `LeaseKind` (which rows may be claimed, how many attempts, what to
do with the ones that ran out); `expired_sweep(kind)` is the one sweep for all of them. Times
are the database's own clock, which every worker shares.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connection, models, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Now

from aios_site.core.errors import LeaseLost
from aios_site.core.renewer import renewer


class Leased(models.Model):
    lease_token = models.BigIntegerField(
        null=True, blank=True, help_text="Fencing token of the latest claim."
    )
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Until when the current holder has it; empty: free."
    )
    lease_attempts = models.PositiveIntegerField(default=0, help_text="Claims so far.")

    class Meta:
        abstract = True


@dataclass(frozen=True)
class LeaseKind:
    """A kind of leased work. `claimable` narrows which rows may be claimed at all (e.g. an
    approved proposal); `on_exhausted(lease)` is called, under a final lease of its own, for a
    row whose attempts ran out and whose last holder let go or expired; it answers False when
    it finds the work was done after all (by an attempt that died before recording it)."""

    name: str
    model: type[models.Model]
    seconds: float
    max_attempts: int
    claimable: Q = field(default_factory=Q)
    on_exhausted: Callable[[Lease], bool | None] | None = None
    on_expired: Callable[[int], None] | None = None  # the work is to be done again

    @property
    def table(self) -> str:
        return self.model._meta.db_table


@dataclass(frozen=True)
class Lease:
    kind: LeaseKind
    pk: int
    token: int
    attempt: int

    def fenced(self) -> models.QuerySet:
        """The row, only while this lease is the current one: write through this."""
        return self.kind.model.objects.filter(pk=self.pk, lease_token=self.token)

    def write(self, **fields) -> bool:
        """Writes the fields under the lease; False when it was taken over."""
        return bool(self.fenced().update(**fields))

    def release(self, **fields) -> bool:
        """Writes the fields and lets go of the row (it may be claimed again at once)."""
        renewer().drop(self.key)
        return self.write(lease_expires_at=None, **fields)

    def renew(self) -> bool:
        ttl = timedelta(seconds=self.kind.seconds)
        return bool(
            self.fenced()
            .filter(lease_expires_at__isnull=False)
            .update(lease_expires_at=Now() + ttl)
        )

    def check(self) -> None:
        """Raises LeaseLost unless this lease is current and unexpired: asked right before an
        effect leaves, so that a holder which was paused past its lease does not send what
        its successor sends (or has given up on)."""
        if not self.fenced().filter(lease_expires_at__gt=Now()).exists():
            raise LeaseLost(f"the lease on {self.kind.name} {self.pk} was taken over")

    @property
    def key(self) -> str:
        return f"{self.kind.table}:{self.pk}:{self.token}"

    def keep_renewed(self) -> None:
        """Renews from the renewer process every third of the lease, until released."""
        sql = (
            f"UPDATE {self.kind.table} SET lease_expires_at = now() + %s * interval '1 second' "  # noqa: S608 - names from the model
            "WHERE id = %s AND lease_token = %s AND lease_expires_at IS NOT NULL"
        )
        params = [self.kind.seconds, self.pk, self.token]
        renewer().hold(self.key, sql, params, every=max(self.kind.seconds / 3, 0.2))


_current: contextvars.ContextVar[Lease | None] = contextvars.ContextVar("lease", default=None)


def guard() -> None:
    """Called by every outbound write (HTTP, SMTP) right before it leaves: raises LeaseLost
    when the work it belongs to is no longer ours. Outside leased work it does nothing."""
    lease = _current.get()
    if lease is not None:
        lease.check()


def claim(kind: LeaseKind, pk: int, *, final: bool = False) -> Lease | None:
    """Takes the row's lease if it is claimable and free (never held, released, or expired),
    with a new fencing token; None otherwise. An ordinary claim counts an attempt and is
    refused once `max_attempts` are used; a `final` claim (to record that the work gave up)
    counts none."""
    ttl = timedelta(seconds=kind.seconds)
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=Now())
    rows = kind.model.objects.filter(kind.claimable, free, pk=pk)
    taken = {"lease_token": Coalesce(F("lease_token"), 0) + 1, "lease_expires_at": Now() + ttl}
    if not final:
        rows = rows.filter(lease_attempts__lt=kind.max_attempts)
        taken["lease_attempts"] = F("lease_attempts") + 1
    with transaction.atomic():
        if not rows.update(**taken):
            return None
        # The UPDATE holds the row's lock until this transaction ends: what we read is ours.
        token, attempts = (
            kind.model.objects.filter(pk=pk).values_list("lease_token", "lease_attempts").get()
        )
    return Lease(kind, pk, token, attempts)


def claim_sql(kind: LeaseKind) -> tuple[str, list[Any], str, list[Any]]:
    """`claim()` as SQL on the kind's table, for work claimed in a statement of its own (the
    run engine claims a run and opens its step in one): what a claim sets, and the condition
    it requires (claimable, free, attempts left), each with its parameters."""
    taken = (
        "lease_token = COALESCE(lease_token, 0) + 1, "
        "lease_expires_at = now() + %s * interval '1 second', "
        "lease_attempts = lease_attempts + 1"
    )
    query = kind.model.objects.filter(kind.claimable).query
    claimable, params = query.get_compiler(connection=connection).compile(query.where)
    condition = "(lease_expires_at IS NULL OR lease_expires_at < now()) AND lease_attempts < %s"
    if claimable:
        condition = f"({claimable}) AND {condition}"
    return taken, [kind.seconds], condition, [*params, kind.max_attempts]


@contextlib.contextmanager
def held(kind: LeaseKind, pk: int) -> Iterator[Lease | None]:
    """Claims, keeps the lease renewed while the block runs, and stops renewing after it (the
    block releases the lease with its result; an exception leaves it to expire, unless the
    block released it)."""
    lease = claim(kind, pk)
    if lease is None:
        yield None
        return
    lease.keep_renewed()
    try:
        with acting(lease):
            yield lease
    finally:
        renewer().drop(lease.key)


@contextlib.contextmanager
def acting(lease: Lease) -> Iterator[Lease]:
    """The work in this block is done under `lease`: `guard()` checks it."""
    bound = _current.set(lease)
    try:
        yield lease
    finally:
        _current.reset(bound)


def expired_sweep(kind: LeaseKind, *, unclaimed: Q | None = None) -> dict[str, int]:
    """The one sweep for a kind: rows with attempts left whose lease ran out (or that were
    never claimed and match `unclaimed`, e.g. a lost message) are handed to `on_expired` to be
    done again; rows with none left are handed to `on_exhausted` under a final lease."""
    stale = Q(lease_expires_at__lt=Now())
    if unclaimed is not None:
        stale |= Q(lease_expires_at__isnull=True) & unclaimed
    rows = kind.model.objects.filter(kind.claimable).filter(stale)
    again = list(rows.filter(lease_attempts__lt=kind.max_attempts).values_list("pk", flat=True))
    done = list(rows.filter(lease_attempts__gte=kind.max_attempts).values_list("pk", flat=True))
    for pk in again:
        if kind.on_expired is not None:
            kind.on_expired(pk)
    gave_up = found_done = 0
    for pk in done:
        lease = claim(kind, pk, final=True)
        if lease is not None and kind.on_exhausted is not None:
            if kind.on_exhausted(lease) is False:
                found_done += 1  # a last attempt had done the work after all
            else:
                gave_up += 1
    return {"again": len(again), "gave_up": gave_up, "found_done": found_done}
