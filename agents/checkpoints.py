"""Closing a step in one statement: the hot path of the engine.

The run's new fields, the checkpoint's result and (optionally) the next step's checkpoint
are written by a single SQL statement, which PostgreSQL executes atomically: one round trip
and one commit per step instead of five. Every part is conditional on the run still being
held under this worker's lease (its fencing token, aios_site/core/lease.py) and not flagged
for cancellation; when that condition fails nothing is written, and the caller takes the
slower path that works out why. Claiming a run is one statement too.
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.utils import timezone

from agents.models import Checkpoint, CheckpointStatus, Run, RunStatus
from aios_site.chaos import chaos_point
from aios_site.core import lease

# What a step left open by a holder whose lease ran out says: its worker died or was paused.
LOST = "worker lost; the run was recovered"


def _assignments(model, values: dict[str, Any]) -> tuple[str, list[Any]]:
    columns, params = [], []
    for name, value in values.items():
        field = model._meta.get_field(name)
        columns.append(f"{connection.ops.quote_name(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    return ", ".join(columns), params


def _prep(model, name: str, value: Any) -> Any:
    return model._meta.get_field(name).get_db_prep_save(value, connection)


def close_step(
    *,
    run: Run,
    token: int,
    checkpoint: Checkpoint,
    checkpoint_fields: dict[str, Any],
    run_fields: dict[str, Any],
    open_next: dict[str, Any] | None,
) -> bool:
    """False: nothing written (lease lost or cancel flagged). An opened next checkpoint is
    left on `run.opened_checkpoint`."""
    chaos_point("before_checkpoint_commit")
    run_set, run_params = _assignments(Run, run_fields)
    checkpoint_set, checkpoint_params = _assignments(Checkpoint, checkpoint_fields)
    run_table = connection.ops.quote_name(Run._meta.db_table)
    checkpoint_table = connection.ops.quote_name(Checkpoint._meta.db_table)
    next_insert, next_params = "SELECT NULL::bigint AS id WHERE false", []
    opened_at = timezone.now()
    if open_next is not None:
        next_insert = (
            # Table and column names come from the models; every value is a parameter.
            f"INSERT INTO {checkpoint_table} (run_id, seq, step, attempt, status, state_before, "  # noqa: S608
            "error, started_at) SELECT %s, %s, %s, 1, %s, %s, '', %s "
            "WHERE EXISTS (SELECT 1 FROM r) RETURNING id"
        )
        next_params = [
            run.pk,
            open_next["seq"],
            open_next["step"],
            CheckpointStatus.RUNNING,
            _prep(Checkpoint, "state_before", open_next["state"]),
            opened_at,
        ]
    sql = (
        f"WITH r AS (UPDATE {run_table} SET {run_set} WHERE id = %s AND lease_token = %s "  # noqa: S608
        "AND status = %s AND NOT cancel_requested RETURNING id), "
        f"c AS (UPDATE {checkpoint_table} SET {checkpoint_set} "
        "WHERE id = %s AND EXISTS (SELECT 1 FROM r) RETURNING id), "
        f"n AS ({next_insert}) "
        "SELECT (SELECT count(*) FROM r), (SELECT id FROM n)"
    )
    params = [
        *run_params,
        run.pk,
        token,
        RunStatus.RUNNING,
        *checkpoint_params,
        checkpoint.pk,
        *next_params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        written, next_id = cursor.fetchone()
    if written and next_id:
        _remember_opened(
            run,
            next_id,
            seq=open_next["seq"],
            step=open_next["step"],
            state=open_next["state"],
            attempt=1,
            started_at=opened_at,
        )
    return bool(written)


def claim_and_open(*, run_id: int, kind: lease.LeaseKind) -> tuple[Run, lease.Lease] | None:
    """Claims a slice of the run under its lease and opens its next step's checkpoint, in one
    statement (`lease.claim` with the step's checkpoint in the same round trip).

    Claimable (`kind`): a due queued run, or a running one whose holder let its lease run out
    (its worker died or was paused); the step that holder left open is marked lost, and the attempt
    number counts the checkpoints the step already has. Returns None when the run is not
    claimable, held by another worker, or out of claims. A run flagged for cancellation is
    claimed without a step.
    """
    now = timezone.now()
    run_table = connection.ops.quote_name(Run._meta.db_table)
    checkpoint_table = connection.ops.quote_name(Checkpoint._meta.db_table)
    taken, taken_params, claimable, claimable_params = lease.claim_sql(kind)
    sql = (
        # What the run was before this statement: only a running run's open step was lost.
        f"WITH was AS (SELECT status FROM {run_table} WHERE id = %s), "  # noqa: S608 - names from the models
        f"r AS (UPDATE {run_table} SET status = %s, started_at = COALESCE(started_at, %s), "
        f"{taken} WHERE id = %s AND {claimable} RETURNING *), "
        f"lost AS (UPDATE {checkpoint_table} SET status = %s, error = %s, finished_at = %s "
        "WHERE run_id IN (SELECT id FROM r) AND status = %s "
        "AND (SELECT status FROM was) = %s), "
        # A holder whose lease ran out may have opened a step this statement cannot see yet:
        # then no step is opened here, and the engine opens it with the next attempt number.
        f"n AS (INSERT INTO {checkpoint_table} "
        "(run_id, seq, step, attempt, status, state_before, error, started_at) "
        "SELECT r.id, r.next_seq, r.current_step, "
        f"(SELECT count(*) FROM {checkpoint_table} c WHERE c.run_id = r.id "
        "AND c.seq = r.next_seq) + 1, %s, r.state, '', %s "
        "FROM r WHERE NOT r.cancel_requested ON CONFLICT DO NOTHING RETURNING id, attempt) "
        "SELECT r.*, n.id AS opened_id, n.attempt AS opened_attempt FROM r LEFT JOIN n ON true"
    )
    params = [
        run_id,
        RunStatus.RUNNING,
        now,
        *taken_params,
        run_id,
        *claimable_params,
        CheckpointStatus.ERROR,
        LOST,
        now,
        CheckpointStatus.RUNNING,
        RunStatus.RUNNING,
        CheckpointStatus.RUNNING,
        now,
    ]
    rows = list(Run.objects.raw(sql, params))
    if not rows:
        return None
    run = rows[0]
    if run.opened_id:
        _remember_opened(
            run,
            run.opened_id,
            seq=run.next_seq,
            step=run.current_step,
            state=run.state,
            attempt=run.opened_attempt,
            started_at=now,
        )
    return run, lease.Lease(kind, run.pk, run.lease_token, run.lease_attempts)


def _remember_opened(run: Run, pk: int, *, seq, step, state, attempt, started_at) -> None:
    """The checkpoint a statement opened for the run's next step, as the engine will use it."""
    run.opened_checkpoint = Checkpoint(
        pk=pk,
        run=run,
        seq=seq,
        step=step,
        attempt=attempt,
        state_before=state,
        status=CheckpointStatus.RUNNING,
        started_at=started_at,
    )
