"""Workers SIGKILLed at random points — before a model call, before a checkpoint commit,
after an effect reached the shop but before it was recorded, before a task's ack — the pool
process alone or with its worker, while the catalog and content pipelines run. Then, with
the kills off, everything settles and the whole history is checked.

AIOS_CHAOS_TRIALS sets how many kills (default 16; the full run is 200, see docs/chaos.md).
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter

import pytest

from agents.models import Run
from aios_site.chaos import POINTS
from approvals.models import Proposal
from tests.chaos.invariants import applied_twice, shop_effects
from tests.chaos.processes import KillLog

TRIALS = int(os.environ.get("AIOS_CHAOS_TRIALS", "16"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.chaos,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(600 + 20 * TRIALS),
]
ODDS = (
    "before_model_call=0.15,before_checkpoint_commit=0.04,"
    "during_effector_commit=0.3,before_ack=0.01"
)
SETTLE_BOUND = 240.0  # seconds, once the kills stop, for every run to finish or wait


def _chaos_env(kills: KillLog, odds: str = ODDS, **extra: str) -> dict[str, str]:
    return {"AIOS_CHAOS": odds, "AIOS_CHAOS_LOG": str(kills.path), **extra}


def test_workers_killed_at_random_points_lose_no_run_and_apply_each_approved_change_once(
    chaos_shop, tmp_path
):
    kills = KillLog(tmp_path / "kills.jsonl")
    workers = chaos_shop.workers(**_chaos_env(kills, AIOS_CHAOS_KILL_MAIN="0.3"))
    started = time.monotonic()
    try:

        def enough() -> bool:
            by_point = kills.by_point()
            return (
                sum(by_point.values()) >= TRIALS
                and set(by_point) == set(POINTS)  # every point hit at least once
                and kills.with_worker() > 0  # and a worker's main process at least once
            )

        chaos_shop.drive(workers, until=enough, timeout=300 + 15 * TRIALS)
        chaotic = time.monotonic() - started
        workers.restart(env={})
        settled = chaos_shop.settle(workers, bound=SETTLE_BOUND)
        problems = chaos_shop.violations()
        runs = Counter(Run.objects.values_list("status", flat=True))
        proposals = Counter(Proposal.objects.values_list("status", flat=True))
        failures = Counter(Run.objects.filter(status="failed").values_list("error", flat=True))
    finally:
        workers.stop()

    by_point = kills.by_point()
    print(
        f"\nchaos: {len(kills)} kills ({dict(by_point)}, {kills.with_worker()} with the "
        f"worker's main process), {workers.started} workers started, {chaotic:.0f} s of "
        f"kills, settled in {settled:.0f} s; sent {len(chaos_shop.shop.sent.webhooks)} "
        f"webhooks, {len(chaos_shop.shop.sent.messages)} messages, "
        f"{len(chaos_shop.shop.sent.briefs)} briefs; runs {dict(runs)}, proposals "
        f"{dict(proposals)}; {len(problems)} violations"
    )
    for error, times in failures.most_common():
        print(f"  {times} run(s) failed: {error[:150]}")
    assert problems == []
    assert chaos_shop.shop.sent.refused == []


def test_without_idempotency_keys_the_checker_finds_changes_applied_twice(chaos_shop, tmp_path):
    """The same checker reports a shop change applied twice: with a fresh key on every
    commit attempt, an attempt killed after the shop applied it (here: every one) is applied
    again by the next."""
    kills = KillLog(tmp_path / "kills.jsonl")
    env = _chaos_env(kills, "during_effector_commit=1", AIOS_CHAOS_NO_IDEMPOTENCY="1")
    chaos_shop.shop.only("product")  # descriptions: every approved one is a write at the shop
    workers = chaos_shop.workers(**env)
    try:
        chaos_shop.drive(workers, until=lambda: applied_twice(shop_effects(chaos_shop.sim)))
    finally:
        workers.stop()
    problems = chaos_shop.violations()

    twice = re.compile(r"proposal \d+ was applied \d+ times at the shop")
    duplicates = [problem for problem in problems if twice.fullmatch(problem)]
    assert duplicates, problems
