from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from agents.services import run_advance, run_answer, run_start
from agents.tasks import trace_export
from aios_site.accounts.services import token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished_slow(make_agent, key):
    run, _ = run_start(agent=make_agent("demo.slow"), input={"key": key, "seconds": 0.01})
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    return run


def _attributes(span) -> dict:
    return {a["key"]: next(iter(a["value"].values())) for a in span["attributes"]}


def test_a_run_is_exported_as_nested_otlp_spans(client, owner, finished_slow):
    raw = token_create(membership=owner.memberships.get(), name="t")[1]

    body = client.get(
        f"/api/v1/runs/{finished_slow.pk}/trace", HTTP_AUTHORIZATION=f"Bearer {raw}"
    ).json()

    [resource] = body["resourceSpans"]
    spans = resource["scopeSpans"][0]["spans"]
    names = [s["name"] for s in spans]
    assert names == [
        "run demo.slow",
        "step start",
        "execute_tool demo.count",
        "execute_tool demo.sleep",
        "step done",
    ]
    run_span, start_step, count_call = spans[0], spans[1], spans[2]
    assert "parentSpanId" not in run_span and start_step["parentSpanId"] == run_span["spanId"]
    assert count_call["parentSpanId"] == start_step["spanId"]
    assert {s["traceId"] for s in spans} == {run_span["traceId"]} and len(run_span["traceId"]) == 32
    assert _attributes(count_call)["gen_ai.tool.name"] == "demo.count"
    assert _attributes(run_span)["gen_ai.operation.name"] == "invoke_agent"
    assert int(count_call["endTimeUnixNano"]) >= int(count_call["startTimeUnixNano"])


def test_an_outsider_cannot_read_a_trace(client, outsider, finished_slow):
    client.force_login(outsider)

    assert client.get(f"/api/v1/runs/{finished_slow.pk}/trace?workspace=bob").status_code == 404


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, dict]] = []

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        _Collector.received.append((self.path, json.loads(self.rfile.read(length))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_finished_runs_are_sent_to_a_configured_collector(settings, finished_slow):
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.AIOS_OTEL_ENDPOINT = f"http://127.0.0.1:{server.server_port}"
    try:
        trace_export.apply(args=[finished_slow.pk])
    finally:
        server.shutdown()

    [(path, body)] = _Collector.received
    assert path == "/v1/traces"
    assert body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"] == "run demo.slow"


def test_export_is_off_by_default(settings, finished_slow):
    from agents.traces import export_run

    assert settings.AIOS_OTEL_ENDPOINT == ""
    assert export_run(run_id=finished_slow.pk) is False


def test_a_model_call_carries_genai_usage_attributes(make_agent):
    from agents.models import JournalEntry

    run, _ = run_start(agent=make_agent("demo.echo"), input={})
    run_advance(run_id=run.pk)
    run_answer(run=run, answer="ok")
    entry = JournalEntry.objects.filter(run=run).first()
    JournalEntry.objects.filter(pk=entry.pk).update(
        kind="model",
        name="draft",
        usage={"prompt_tokens": 12, "completion_tokens": 5},
        response={"model": "qwen-plus-2025", "requested_model": "qwen-plus", "tier": "remote"},
    )
    from agents.traces import run_spans

    span = next(s for s in run_spans(run) if s["name"].startswith("chat"))
    attributes = _attributes(span)
    assert span["name"] == "chat qwen-plus" and span["kind"] == 3
    assert attributes["gen_ai.usage.input_tokens"] == "12"
    assert attributes["gen_ai.usage.output_tokens"] == "5"
    assert attributes["gen_ai.response.model"] == "qwen-plus-2025"
    assert (attributes["aios.capability"], attributes["aios.tier"]) == ("draft", "remote")
