"""The board with 10 000 pending proposals: page time, queries, and the approve round trip.

    python bench/board.py [--proposals 10000] [--requests 50] [--json PATH]

Starts its own embedded PostgreSQL + Valkey in a temporary directory, creates one workspace
with three agents and `--proposals` pending `core.note` proposals (bulk-inserted, with
diffs and payload hashes as the service makes them), then, through Django's test client
(in-process: server time, no network): GET the board's first page and a page deep in it,
GET /api/v1/proposals, and approve cards one by one as a browser does (htmx POST returning
the card). With `--json PATH`, the figures are also written to PATH.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--proposals", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    options = parser.parse_args()

    from runtime import django_on_embedded_services, machine, percentile, write_json

    with django_on_embedded_services():
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        owner, proposals = _setup(options.proposals)
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(owner)
        print(machine())
        print(f"{options.proposals} pending proposals from 3 agents in one workspace\n")
        print("| request | p50 ms | p95 ms | queries |")
        print("| --- | --- | --- | --- |")
        last_page = options.proposals // 50
        figures: dict = {"proposals": options.proposals, "requests": options.requests}
        for key, label, path in [
            ("first_page", "board, first page (50 cards)", "/w/bench/board/"),
            (
                "deep_page",
                f"board, page {last_page // 2}",
                f"/w/bench/board/?page={last_page // 2}",
            ),
            ("filtered", "board, one agent, high risk", "/w/bench/board/?agent=agent-1&risk=high"),
            (
                "api_list",
                "GET /api/v1/proposals?status=pending",
                "/api/v1/proposals?status=pending&workspace=bench",
            ),
        ]:
            times = _time(lambda p=path: client.get(p), options.requests)
            with CaptureQueriesContext(connection) as queries:
                assert client.get(path).status_code == 200
            print(
                f"| {label} | {percentile(times, 0.5):.1f} | {percentile(times, 0.95):.1f} | "
                f"{len(queries)} |"
            )
            figures[key] = {
                "label": label,
                "p50_ms": round(percentile(times, 0.5), 2),
                "p95_ms": round(percentile(times, 0.95), 2),
                "queries": len(queries),
            }
        approvals = iter(proposals)

        def approve():
            proposal = next(approvals)
            response = client.post(
                f"/w/bench/board/{proposal.pk}/approve/",
                {"payload_hash": proposal.payload_hash},
                HTTP_HX_REQUEST="true",
            )
            assert b">approved<" in response.content, response.content[:300]

        times = _time(approve, options.requests)
        print(
            f"| approve a card (htmx POST → the card) | {percentile(times, 0.5):.1f} | "
            f"{percentile(times, 0.95):.1f} | n/a |"
        )
        print(f"\napprove mean: {statistics.mean(times):.1f} ms")
        figures["approve"] = {
            "p50_ms": round(percentile(times, 0.5), 2),
            "p95_ms": round(percentile(times, 0.95), 2),
        }
        write_json(options.json, figures)


def _time(call, n: int) -> list[float]:
    call()  # warm up
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _setup(count: int):
    from agents.services import agent_create
    from aios_site.accounts.services import user_ensure, workspace_create
    from approvals.models import Proposal
    from approvals.services import payload_hash

    owner = user_ensure(email="owner@bench.example")
    workspace = workspace_create(name="Bench", slug="bench", owner=owner)
    agents = [
        agent_create(
            workspace=workspace,
            slug=f"agent-{n}",
            name=f"Agent {n}",
            pipeline="demo.propose",
            allowed_effectors=["core.note"],
        )
        for n in range(3)
    ]
    risks = ["low", "medium", "high"]
    rows = []
    for n in range(count):
        payload = {
            "namespace": "notes",
            "key": f"k{n}",
            "content": f"Note number {n} for the shop.",
        }
        rows.append(
            Proposal(
                workspace=workspace,
                agent=agents[n % 3],
                seq=1,
                step="start",
                effector="core.note",
                target=f"notes/k{n}",
                payload=payload,
                proposed_payload=payload,
                payload_hash=payload_hash(payload),
                diff=[
                    {
                        "field": f"notes/k{n}",
                        "before": f"Old note {n}.",
                        "after": payload["content"],
                    }
                ],
                risk=risks[(n // 3) % 3],
                rationale="Bench proposal.",
                sources=["notes/k1@1"],
                facts={},
                decision="require_approval",
                decided_rule={"name": "Everything else waits for a person", "position": 5},
            )
        )
    Proposal.objects.bulk_create(rows, batch_size=2000)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE approvals_proposal")
    return owner, list(Proposal.objects.order_by("pk")[:200])


if __name__ == "__main__":
    main()
