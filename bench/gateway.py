"""Gateway overhead per model call against the raw `openai` SDK, on the same local server,
and the latency of a response-cache hit.

    python bench/gateway.py [--calls 300] [--json PATH]

Both talk to the local OpenAI-compatible test server over HTTP. The gateway path is
`agents.llm.call("plan", ...)`: route resolution, provider lookup, a price and daily budgets
on the agent and the workspace, so every call reserves, settles and writes a ledger row in
the embedded PostgreSQL. The cached path asks the same question with the cache opted in:
a Redis read and a ledger row, no HTTP. With `--json PATH`, the figures are also written
to PATH.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import runtime  # noqa: E402 - the embedded-services helpers of the runtime benchmark


def timed(calls: int, work) -> list[float]:
    for _ in range(10):
        work()
    timings = []
    for _ in range(calls):
        started = time.perf_counter()
        work()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    options = parser.parse_args()
    calls = options.calls
    with runtime.django_on_embedded_services():
        import openai
        from django.conf import settings

        from agents import llm
        from agents.models import ModelPrice
        from agents.services import run_start
        from tests.fakes.openai_server import FakeOpenAI

        server = FakeOpenAI()
        settings.AIOS_LLM_BASE_URL = server.base_url
        settings.AIOS_LLM_MODEL_SMALL = "qwen-plus"
        ModelPrice.objects.get_or_create(
            model="qwen-plus",
            defaults={"input_per_million": Decimal("2"), "output_per_million": Decimal("6")},
        )
        agent = runtime.noop_agent()
        agent.daily_budget = Decimal("1000")
        agent.save()
        agent.workspace.daily_budget = Decimal("1000")
        agent.workspace.save()
        run, _ = run_start(agent=agent, input={})
        messages = [{"role": "user", "content": "Where is my order #1001?"}]
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)

        raw = timed(
            calls,
            lambda: client.chat.completions.create(
                model="qwen-plus", messages=messages, max_tokens=1024
            ),
        )
        gateway = timed(calls, lambda: llm.call("plan", run=run, request={"messages": messages}))
        cached_request = {"messages": messages, "cache": True}
        cached = timed(calls, lambda: llm.call("plan", run=run, request=cached_request))
        server.close()

    print(runtime.machine())
    for name, values in (
        ("raw openai SDK", raw),
        ("AIOS gateway", gateway),
        ("cache hit", cached),
    ):
        print(
            f"{name:<16} p50 {statistics.median(values):6.2f} ms  "
            f"p95 {runtime.percentile(values, 0.95):6.2f} ms  (n={len(values)})"
        )
    overhead = statistics.median(gateway) - statistics.median(raw)
    print(f"gateway overhead per call (p50): {overhead:.2f} ms")
    runtime.write_json(
        options.json,
        {
            "calls": calls,
            "raw_ms": runtime.summary(raw),
            "gateway_ms": runtime.summary(gateway),
            "cache_hit_ms": runtime.summary(cached),
            "overhead_p50_ms": round(overhead, 3),
        },
    )


if __name__ == "__main__":
    main()
