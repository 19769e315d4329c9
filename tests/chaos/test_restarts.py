"""Valkey killed and restarted, then PostgreSQL shut down immediately and restarted, while
the shop keeps sending and the workers keep running pipelines: no run is lost, no accepted
webhook or message is, every change still reaches the shop once, and once PostgreSQL is
back every worker process works again."""

from __future__ import annotations

import time

import pytest
from django.db import DatabaseError, connection

from tests.chaos.restarts import postgres_restart, valkey_restart
from tests.helpers import wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.chaos,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(900),
]
SETTLE_BOUND = 240.0
# Tasks that were running when PostgreSQL went away fail; this long after it is back,
# nothing may fail for a dead connection any more.
GRACE = 5.0
DEAD_CONNECTION = ("the connection is closed", "the connection is lost", "closed the connection")


def _database_answers() -> bool:
    try:
        connection.close()
        connection.ensure_connection()
    except DatabaseError:
        return False
    return True


def test_restarting_valkey_and_postgresql_under_load_loses_no_run_and_no_accepted_request(
    chaos_shop,
):
    sent = chaos_shop.shop.sent

    def accepted(count: int):
        return lambda: len(sent.webhooks) + len(sent.messages) + len(sent.briefs) >= count

    # Two single-process workers: each has run tasks, and so holds a connection, when
    # PostgreSQL goes away; neither can leave the work to another process that has none.
    workers = chaos_shop.workers(concurrency=1)
    try:
        workers.wait_ready()
        chaos_shop.drive(workers, until=accepted(5))
        valkey_restart()
        chaos_shop.drive(workers, until=accepted(10))
        postgres_restart()
        wait_until(_database_answers, timeout=60, interval=0.5)
        chaos_shop.drive(workers, until=accepted(15))
        settled = chaos_shop.settle(workers, bound=SETTLE_BOUND)
        # Once more with nothing in flight: each worker's next query is a sweep's, outside
        # any transaction, on the connection PostgreSQL closed.
        postgres_restart()
        wait_until(_database_answers, timeout=60, interval=0.5)
        back = time.monotonic()
        chaos_shop.drive(workers, until=lambda: time.monotonic() - back > GRACE)
        marks = [(process, len(process.output())) for process in workers.processes]
        chaos_shop.drive(workers, until=accepted(18))
        settled += chaos_shop.settle(workers, bound=SETTLE_BOUND)
        problems = chaos_shop.violations()
        later = {process.log.name: process.output(mark) for process, mark in marks}
    finally:
        workers.stop()

    print(
        f"\nrestarts: {len(sent.webhooks)} webhooks, {len(sent.messages)} messages and "
        f"{len(sent.briefs)} briefs accepted, settled in {settled:.0f} s"
    )
    assert problems == []
    assert sent.refused == []
    stuck = [name for name, output in later.items() if any(d in output for d in DEAD_CONNECTION)]
    assert stuck == [], "a worker process kept using a connection PostgreSQL had closed"
    assert workers.started == 2  # neither restart took a worker down
