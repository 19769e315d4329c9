"""Prices, hard budgets and the cost ledger.

Before a paid call the gateway reserves its worst-case cost against every cap that applies
(agent and workspace, day and month) in one transaction of conditional updates; if any cap
would be crossed nothing is reserved and the call is refused. After the call the reservation
is settled to the real cost. Concurrent calls therefore cannot together pass a cap.

A reservation is leased (by the database's clock, which every worker shares): its row
expires a while after the call's timeout, and the next reservation in the workspace releases
expired ones, so a worker that died holding one does not keep the room until the period
renews. Releasing is deleting the row, so a call that outlives
its lease and settles late does not give the room back twice.

A paid model needs a price: its own (the workspace's over the installation's), or an explicit
default price for any model (`ANY_MODEL`); without one no cap could hold, so the gateway
refuses the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from time import monotonic

from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from agents.models import (
    Agent,
    BudgetCounter,
    BudgetReservation,
    CostEntry,
    ModelPrice,
    Run,
)

MILLION = Decimal(1_000_000)
# Per message, chat formats add a few tokens of framing.
MESSAGE_OVERHEAD_TOKENS = 8
ANY_MODEL = "*"  # the model name of a default price: for models without one of their own


class BudgetReached(Exception):
    """A paid call would cross a cap; the run waits until the budget is raised or renews."""

    def __init__(self, *, scope: str, period: str, cap: Decimal, renews_at: datetime) -> None:
        adjective = {"day": "daily", "month": "monthly"}[period]
        super().__init__(f"the {scope} {adjective} budget of {cap} is reached")
        self.scope, self.period, self.cap, self.renews_at = scope, period, cap, renews_at


_prices: dict[tuple[int, str], tuple[float, ModelPrice | None]] = {}
PRICE_CACHE_SECONDS = 30.0  # an edited price applies to calls within half a minute


def price_for(*, workspace_id: int, model: str) -> ModelPrice | None:
    key = (workspace_id, model)
    cached = _prices.get(key)
    if cached and cached[0] > monotonic():
        return cached[1]
    price = _price_from_db(workspace_id=workspace_id, model=model)
    _prices[key] = (monotonic() + PRICE_CACHE_SECONDS, price)
    return price


def price_forget(*, workspace_id: int, model: str) -> None:
    """An edited price applies to this process's next call at once (others: within the TTL)."""
    for key in [k for k in _prices if k[0] == workspace_id and model in (k[1], ANY_MODEL)]:
        del _prices[key]


def _price_from_db(*, workspace_id: int, model: str) -> ModelPrice | None:
    """The model's own price (the workspace's over the installation's), else a default one."""
    prices = ModelPrice.objects.filter(
        Q(workspace_id=workspace_id) | Q(workspace=None), model__in=[model, ANY_MODEL]
    )
    return min(prices, key=lambda p: (p.model == ANY_MODEL, p.workspace_id is None), default=None)


def cost_of(price: ModelPrice | None, prompt_tokens: int, completion_tokens: int) -> Decimal:
    if price is None:
        return Decimal("0")
    return (
        price.input_per_million * prompt_tokens + price.output_per_million * completion_tokens
    ) / MILLION


def prompt_token_ceiling(messages: list[dict[str, str]]) -> int:
    """An upper bound on prompt tokens: no tokenizer makes more tokens than UTF-8 bytes."""
    return sum(len(str(m.get("content", "")).encode()) + MESSAGE_OVERHEAD_TOKENS for m in messages)


def _period_start(period: str, today: date) -> date:
    return today.replace(day=1) if period == "month" else today


def _renews_at(period: str, start: date) -> datetime:
    if period == "day":
        following = start + timedelta(days=1)
    else:
        following = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return timezone.make_aware(datetime.combine(following, time.min))


def _caps(agent: Agent) -> list[tuple[int | None, str, Decimal]]:
    workspace = agent.workspace
    caps = [
        (agent.pk, "day", agent.daily_budget),
        (agent.pk, "month", agent.monthly_budget),
        (None, "day", workspace.daily_budget),
        (None, "month", workspace.monthly_budget),
    ]
    return [(agent_id, period, cap) for agent_id, period, cap in caps if cap is not None]


@dataclass
class Reservation:
    amount: Decimal
    counter_ids: list[int]
    pk: int | None = field(default=None)  # its BudgetReservation row, while it holds any


LEASE_SECONDS = 300.0  # a reservation outlives its call's timeout by this much at least


def reserve(*, agent: Agent, amount: Decimal, lease_seconds: float = LEASE_SECONDS) -> Reservation:
    """Holds `amount` against every cap of the agent and its workspace, or raises BudgetReached.

    Each cap is one upsert whose update only happens while `spent + reserved + amount`
    stays within the cap; a cap that says no rolls back what the others held. Expired
    reservations of the workspace are released first.
    """
    caps = _caps(agent)
    if not caps:
        return Reservation(amount=amount, counter_ids=[])
    with connection.cursor() as cursor:  # on its own: a refusal below keeps what it released
        cursor.execute(_RECLAIM, [agent.workspace_id])
    with transaction.atomic(), connection.cursor() as cursor:
        counter_ids = _hold(cursor, agent, amount, caps)
        cursor.execute(_LEASE, [agent.workspace_id, counter_ids, amount, lease_seconds])
        pk = cursor.fetchone()[0]
    return Reservation(amount=amount, counter_ids=counter_ids, pk=pk)


def renew(reservation: Reservation, *, lease_seconds: float) -> None:
    """A call still in flight (a long stream) keeps its reservation."""
    if reservation.pk is not None:
        BudgetReservation.objects.filter(pk=reservation.pk).update(
            expires_at=Now() + timedelta(seconds=lease_seconds)
        )


def _hold(cursor, agent: Agent, amount: Decimal, caps) -> list[int]:
    today = timezone.localdate()
    counter_ids = []
    for agent_id, period, cap in caps:
        start = _period_start(period, today)
        row = None
        if amount <= cap:
            cursor.execute(_RESERVE, [agent.workspace_id, agent_id, period, start, amount, cap])
            row = cursor.fetchone()
        if row is None:  # leaving the block rolls back what was held on the other caps
            raise BudgetReached(
                scope="agent" if agent_id else "workspace",
                period=period,
                cap=cap,
                renews_at=_renews_at(period, start),
            )
        counter_ids.append(row[0])
    return counter_ids


# Table names come from the models; every value is a parameter.
_COUNTERS = BudgetCounter._meta.db_table
_RESERVE = (
    f"INSERT INTO {_COUNTERS} (workspace_id, agent_id, period, period_start, spent, reserved) "  # noqa: S608
    "VALUES (%s, %s, %s, %s, 0, %s) ON CONFLICT ON CONSTRAINT budget_counter_unique "
    f"DO UPDATE SET reserved = {_COUNTERS}.reserved + EXCLUDED.reserved "
    f"WHERE {_COUNTERS}.spent + {_COUNTERS}.reserved + EXCLUDED.reserved <= %s RETURNING id"
)
_LEASES = BudgetReservation._meta.db_table
_LEASE = (
    f"INSERT INTO {_LEASES} (workspace_id, counter_ids, amount, expires_at) "  # noqa: S608
    "VALUES (%s, %s, %s, statement_timestamp() + %s * interval '1 second') RETURNING id"
)
# Deleting an expired row is what releases it: two reclaimers cannot both give it back.
_RECLAIM = (
    f"WITH expired AS (DELETE FROM {_LEASES} WHERE workspace_id = %s "  # noqa: S608
    "AND expires_at < statement_timestamp() RETURNING counter_ids, amount), "
    "held AS (SELECT counter_id, SUM(amount) AS total "
    "FROM expired, unnest(expired.counter_ids) AS counter_id GROUP BY counter_id) "
    f"UPDATE {_COUNTERS} SET reserved = {_COUNTERS}.reserved - held.total FROM held "
    f"WHERE {_COUNTERS}.id = held.counter_id"
)
# A reservation already reclaimed (the call outlived its lease) releases nothing again.
_RELEASE_AND_SPEND = (
    f"WITH released AS (DELETE FROM {_LEASES} WHERE id = %s RETURNING amount), "  # noqa: S608
    f"settled AS (UPDATE {_COUNTERS} SET "
    "reserved = reserved - COALESCE((SELECT amount FROM released), 0), spent = spent + %s "
    "WHERE id = ANY(%s)) "
)
_LEDGER = CostEntry._meta.db_table
_RECORD = (
    f"INSERT INTO {_LEDGER} (workspace_id, agent_id, run_id, seq, step, model, tier, "  # noqa: S608
    "prompt_tokens, completion_tokens, cost, latency_ms, cache_hit, estimated, note, created_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_SETTLE_AND_RECORD = _RELEASE_AND_SPEND + _RECORD
# The statement that ledgers a call adds its cost to the run's as well: the run's cost is what
# its ledger holds, whichever attempt, worker or answer the call belonged to.
_CHARGE_RUN = f", charged AS (UPDATE {Run._meta.db_table} SET cost = cost + %s WHERE id = %s) "  # noqa: S608
_SETTLE_RECORD_AND_CHARGE = _RELEASE_AND_SPEND + _CHARGE_RUN + _RECORD


def settle(reservation: Reservation, actual: Decimal) -> None:
    """Turns a reservation into what the call really cost (zero if nothing was billed)."""
    if reservation.counter_ids:
        with connection.cursor() as cursor:
            cursor.execute(
                _RELEASE_AND_SPEND + "SELECT 1",
                [reservation.pk, actual, reservation.counter_ids],
            )


def settle_and_record(
    reservation: Reservation,
    *,
    run,
    model: str,
    tier: str,
    usage: dict,
    cost: Decimal,
    latency_ms: float,
    cache_hit: bool = False,
    note: str = "",
) -> None:
    """Settles the reservation to the real cost, writes the ledger row and adds the cost to
    `run.cost`, in one statement. `usage` marked `estimated` was not reported by the server.

    The run is charged here rather than by the step's commit, so a call is counted once
    whatever happens after it: a step that fails later, a worker killed before its commit
    (the retry reuses the journaled answer without calling again), or a holder replaced
    while its call was in flight (its late charge adds to the run; it cannot overwrite)."""
    charge = [cost, run.pk] if cost else []
    with connection.cursor() as cursor:
        cursor.execute(
            _SETTLE_RECORD_AND_CHARGE if charge else _SETTLE_AND_RECORD,
            [
                reservation.pk,
                cost,
                reservation.counter_ids,
                *charge,
                run.workspace_id,
                run.agent_id,
                run.pk,
                run.next_seq,
                run.current_step,
                model,
                tier,
                usage.get("prompt_tokens", 0),
                usage.get("completion_tokens", 0),
                cost,
                latency_ms,
                cache_hit,
                bool(usage.get("estimated")),
                note[:300],
                timezone.now(),
            ],
        )
    run.cost += cost  # what the statement wrote, for whoever shows this instance next


def worst_case(
    price: ModelPrice | None, messages: list[dict[str, str]], max_tokens: int
) -> Decimal:
    return cost_of(price, prompt_token_ceiling(messages), max_tokens)
