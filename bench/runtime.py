"""The run engine: durable overhead per step against LangGraph, live progress, and throughput.

    python bench/runtime.py [--runs 100] [--progress 100] [--burst 300] [--json PATH]

Starts its own embedded PostgreSQL + Valkey in a temporary directory.

1. Overhead per step: `demo.noop` (three steps that do nothing) through a real Celery
   worker, one run at a time; per step = (finished_at - started_at) / 3 of each run, i.e.
   claim, three checkpoint transactions and the final commit. The same three-node graph in
   LangGraph with `langgraph-checkpoint-postgres` (durability "sync") on the same PostgreSQL,
   invoked in-process; per step = invoke time / 3. (`pip install langgraph
   langgraph-checkpoint-postgres`; skipped with a note if missing.)
2. Live progress: `--progress` `demo.echo` runs, each answered while a websocket watches
   its page and another the runs list (the project's ASGI application and consumers, in
   this process, over the Redis channel layer); latency = the frame showing "succeeded"
   arriving minus the run's `finished_at`, stamped by the worker just before its commit. It
   includes the commit, the publisher's coalescing window (`agents.events`), the channel
   layer and the consumer's rendering; not the network hop to a browser.
3. Throughput: `--burst` runs submitted at once, drained by a worker with 1, then 2,
   processes; runs per second from the first claim to the last finish.

With `--json PATH`, the figures are also written to PATH (bench/run_all.py reads them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    """p50, p95, p99 and mean of some timings, rounded for a report."""
    return {
        "p50": round(percentile(values, 0.5), 3),
        "p95": round(percentile(values, 0.95), 3),
        "p99": round(percentile(values, 0.99), 3),
        "mean": round(statistics.mean(values), 3),
        "n": len(values),
    }


def write_json(path: str | None, figures: dict) -> None:
    """The figures of a benchmark, for bench/run_all.py; nothing without `--json`."""
    if path:
        Path(path).write_text(json.dumps(figures, indent=2, default=str) + "\n")


@contextlib.contextmanager
def django_on_embedded_services():
    """Django set up on a fresh embedded PostgreSQL + Valkey, removed again afterwards."""
    from aios_site import embedded

    data_dir = Path(tempfile.mkdtemp(prefix="aios-bench-"))
    try:
        services = embedded.start(data_dir)
        try:
            setup_django(services, data_dir)
            yield
        finally:
            services.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def machine() -> str:
    return (
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )


def setup_django(services, data_dir: Path) -> None:
    """Django on the services started under `data_dir`, migrated."""
    os.environ.update(services.environ())
    os.environ["AIOS_DATA_DIR"] = str(data_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "aios_site.settings.base"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def start_worker(concurrency: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "aios_site.cli", "worker", "-c", str(concurrency), "-l", "WARNING"],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    from aios_site.celery import live_worker_count

    deadline = time.monotonic() + 60
    while live_worker_count() < 1:
        if time.monotonic() > deadline:
            raise SystemExit("the worker did not start")
    return process


def stop_worker(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=30)


def noop_agent():
    from agents.models import Agent
    from aios_site.accounts.models import Workspace

    workspace, _ = Workspace.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    agent, _ = Agent.objects.get_or_create(
        workspace=workspace, slug="noop", defaults={"name": "noop", "pipeline": "demo.noop"}
    )
    return agent


def wait_finished(run_ids: list[int], timeout: float = 600) -> None:
    from agents.models import Run

    deadline = time.monotonic() + timeout
    while Run.objects.filter(pk__in=run_ids, status__in=["queued", "running"]).exists():
        if time.monotonic() > deadline:
            raise SystemExit("runs did not finish")
        time.sleep(0.005)


def aios_per_step(runs: int) -> list[float]:
    from agents.models import Run
    from agents.services import run_start

    agent = noop_agent()
    for _ in range(5):  # warm the worker: imports, connections
        wait_finished([run_start(agent=agent, input={})[0].pk])
    per_step = []
    for _ in range(runs):
        run, _ = run_start(agent=agent, input={})
        wait_finished([run.pk])
        run = Run.objects.get(pk=run.pk)
        assert run.status == "succeeded", run.error
        per_step.append((run.finished_at - run.started_at).total_seconds() * 1000 / 3)
    return per_step


def progress_latency(samples: int) -> dict[str, list[float]]:
    """Milliseconds from each run's final commit to the frames that show it succeeded: on
    its page and in the runs list, read by two websockets at once."""
    from asgiref.sync import sync_to_async

    from agents.models import Agent, Run
    from agents.services import run_answer
    from aios_site.accounts.services import membership_ensure, user_ensure

    pooled = "AIOS_DB_POOL" in os.environ
    from tests.sockets import ORIGIN, connect, run, session_cookie

    if not pooled:  # importing the ASGI application sets it; the workers started later must not
        os.environ.pop("AIOS_DB_POOL", None)

    workspace = noop_agent().workspace
    agent, _ = Agent.objects.get_or_create(
        workspace=workspace, slug="echo", defaults={"name": "echo", "pipeline": "demo.echo"}
    )
    user = user_ensure(email="owner@bench.example")
    membership_ensure(workspace=workspace, user=user, role="owner")
    latencies: dict[str, list[float]] = {"page": [], "list": []}

    async def until_succeeded(socket, row: str = "") -> float:
        """When a frame showing the run succeeded came (in the list: the run's own row)."""
        while True:
            frame = await socket.receive_from(timeout=15)
            if "badge succeeded" in frame and row in frame:
                return time.time()

    async def scenario() -> None:
        headers = [ORIGIN, (b"cookie", await sync_to_async(session_cookie)(user))]
        listing, connected, _ = await connect(f"/ws/w/{workspace.slug}/", headers)
        assert connected, "the runs list's websocket was refused"
        await listing.receive_from(timeout=5)  # the live badge
        for n in range(samples + 3):
            waiting = await sync_to_async(_waiting_echo)(agent)
            path = f"/ws/w/{workspace.slug}/runs/{waiting.pk}/"
            page, connected, _ = await connect(path, headers)
            assert connected, "the run page's websocket was refused"
            await sync_to_async(run_answer)(run=waiting, answer="yes")
            seen = await asyncio.gather(
                until_succeeded(page), until_succeeded(listing, f'id="run-{waiting.pk}"')
            )
            finished = await sync_to_async(Run.objects.get)(pk=waiting.pk)
            if n >= 3:  # the first ones warm the consumers and templates
                for name, at in zip(("page", "list"), seen, strict=True):
                    latencies[name].append((at - finished.finished_at.timestamp()) * 1000)
            await page.disconnect()
        await listing.disconnect()

    run(scenario())
    return latencies


def _waiting_echo(agent):
    from agents.models import Run
    from agents.services import run_start

    run, _ = run_start(agent=agent, input={"text": "progress"})
    deadline = time.monotonic() + 30
    while (run := Run.objects.get(pk=run.pk)).status != "waiting":
        if time.monotonic() > deadline:
            raise SystemExit(f"echo run {run.pk} did not wait for its answer ({run.status})")
        time.sleep(0.005)
    return run


def langgraph_per_step(runs: int) -> list[float] | None:
    try:
        from langgraph.checkpoint.postgres import PostgresSaver
        from langgraph.graph import END, START, StateGraph
    except ImportError:
        return None
    from typing import TypedDict

    from django.conf import settings

    db = settings.DATABASES["default"]
    uri = f"postgresql://{db['USER']}@/{db['NAME']}?host={db['HOST']}"

    class State(TypedDict):
        n: int

    def node(state: State) -> State:
        return {"n": state["n"] + 1}

    graph = StateGraph(State)
    for name in ("start", "middle", "end"):
        graph.add_node(name, node)
    graph.add_edge(START, "start")
    graph.add_edge("start", "middle")
    graph.add_edge("middle", "end")
    graph.add_edge("end", END)
    per_step = []
    with PostgresSaver.from_conn_string(uri) as saver:
        saver.setup()
        app = graph.compile(checkpointer=saver)
        for i in range(runs + 5):
            started = time.perf_counter()
            app.invoke({"n": 0}, {"configurable": {"thread_id": f"bench-{i}"}}, durability="sync")
            if i >= 5:  # the same warm-up as for AIOS
                per_step.append((time.perf_counter() - started) * 1000 / 3)
    return per_step


def throughput(burst: int, concurrency: int) -> float:
    from agents.models import Run
    from agents.services import run_start

    agent = noop_agent()
    worker = start_worker(concurrency)
    try:
        ids = [run_start(agent=agent, input={})[0].pk for _ in range(burst)]
        wait_finished(ids)
    finally:
        stop_worker(worker)
    runs = Run.objects.filter(pk__in=ids)
    assert not runs.exclude(status="succeeded").exists()
    first = min(r.started_at for r in runs)
    last = max(r.finished_at for r in runs)
    return burst / (last - first).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--progress", type=int, default=100, help="runs watched live")
    parser.add_argument("--burst", type=int, default=300)
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    options = parser.parse_args()
    with django_on_embedded_services():
        worker = start_worker(1)
        try:
            aios = aios_per_step(options.runs)
            progress = progress_latency(options.progress)
        finally:
            stop_worker(worker)
        graph = langgraph_per_step(options.runs)
        rates = {n: throughput(options.burst, n) for n in (1, 2)}

    print(machine())
    print(f"durable overhead per step, demo.noop x {options.runs} runs (ms):")
    print(
        f"  AIOS (Celery worker, Postgres checkpoints)  p50 {percentile(aios, 0.5):6.2f}"
        f"  p95 {percentile(aios, 0.95):6.2f}  mean {statistics.mean(aios):6.2f}"
    )
    if graph is None:
        print("  LangGraph: not installed (pip install langgraph langgraph-checkpoint-postgres)")
    else:
        print(
            f"  LangGraph (PostgresSaver, durability=sync)  p50 {percentile(graph, 0.5):6.2f}"
            f"  p95 {percentile(graph, 0.95):6.2f}  mean {statistics.mean(graph):6.2f}"
        )
        print(
            f"  ratio AIOS / LangGraph (p50): {percentile(aios, 0.5) / percentile(graph, 0.5):.2f}"
        )
    print(f"live progress, final commit to the websocket frame, {options.progress} runs (ms):")
    for name, label in (("page", "the run's page"), ("list", "the runs list")):
        values = progress[name]
        print(
            f"  {label:<15} p50 {percentile(values, 0.5):6.1f}  p95 {percentile(values, 0.95):6.1f}"
            f"  max {max(values):6.1f}"
        )
    for n, rate in rates.items():
        print(
            f"throughput, {options.burst} trivial runs, worker with {n} process(es): "
            f"{rate:6.1f} runs/s"
        )
    write_json(
        options.json,
        {
            "runs": options.runs,
            "aios_per_step_ms": summary(aios),
            "langgraph_per_step_ms": summary(graph) if graph else None,
            "langgraph_missing": None if graph else "pip install -e '.[bench]'",
            "ratio_p50": (
                round(percentile(aios, 0.5) / percentile(graph, 0.5), 3) if graph else None
            ),
            "progress_ms": {name: summary(values) for name, values in progress.items()},
            "burst": options.burst,
            "throughput_runs_per_s": {str(n): round(rate, 1) for n, rate in rates.items()},
        },
    )


if __name__ == "__main__":
    main()
