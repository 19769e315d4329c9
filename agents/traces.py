"""A run as OpenTelemetry spans (OTLP/JSON), with GenAI semantic conventions for model calls.

run → step attempts → calls. `GET /api/v1/runs/{id}/trace` returns them; with
AIOS_OTEL_ENDPOINT set, finished runs are also sent to `<endpoint>/v1/traces`.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from agents.models import JournalKind, Run
from agents.selectors import checkpoint_list

SPAN_KIND_INTERNAL, SPAN_KIND_CLIENT = 1, 3
STATUS_OK, STATUS_ERROR = 1, 2


def _id(*parts: Any, length: int) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[: length * 2]


def _nanos(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1_000_000_000))


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _attributes(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in values.items() if v is not None]


def _span(trace_id, span_id, parent_id, name, start, end, ok, attributes, kind=SPAN_KIND_INTERNAL):
    span = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": _nanos(start),
        "endTimeUnixNano": _nanos(end),
        "attributes": _attributes(attributes),
        "status": {"code": STATUS_OK if ok else STATUS_ERROR},
    }
    if parent_id:
        span["parentSpanId"] = parent_id
    return span


def _call_span(trace_id, parent_id, entry) -> dict[str, Any]:
    end = entry.created_at
    start = end - timedelta(milliseconds=entry.latency_ms)
    attributes: dict[str, Any] = {
        "aios.journal.position": entry.position,
        "aios.journal.kind": entry.kind,
        "aios.cost": float(entry.cost),
    }
    name, kind = f"{entry.kind} {entry.name}", SPAN_KIND_INTERNAL
    if entry.kind == JournalKind.MODEL:
        usage, response = entry.usage or {}, entry.response or {}
        operation = "embeddings" if entry.name == "embed" else "chat"
        model = response.get("requested_model") or response.get("model")
        name, kind = f"{operation} {model or entry.name}", SPAN_KIND_CLIENT
        attributes.update(
            {
                "gen_ai.operation.name": operation,
                "gen_ai.provider.name": "openai" if response.get("tier") == "remote" else "aios",
                "gen_ai.request.model": model,
                "gen_ai.response.model": response.get("model"),
                "gen_ai.usage.input_tokens": usage.get("prompt_tokens"),
                "gen_ai.usage.output_tokens": usage.get("completion_tokens"),
                "aios.capability": entry.name,
                "aios.tier": response.get("tier"),
            }
        )
    elif entry.kind == JournalKind.TOOL:
        name = f"execute_tool {entry.name}"
        attributes.update({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": entry.name})
    if not entry.ok:
        attributes["error.type"] = entry.error.split(":", 1)[0]
    span_id = _id("call", entry.pk, length=8)
    return _span(trace_id, span_id, parent_id, name, start, end, entry.ok, attributes, kind)


def run_spans(run: Run) -> list[dict[str, Any]]:
    trace_id = _id("run", run.pk, length=16)
    run_span_id = _id("run-span", run.pk, length=8)
    checkpoints = checkpoint_list(run=run)
    spans = []
    for checkpoint in checkpoints:
        step_id = _id("checkpoint", checkpoint.pk, length=8)
        spans.append(
            _span(
                trace_id,
                step_id,
                run_span_id,
                f"step {checkpoint.step}",
                checkpoint.started_at,
                checkpoint.finished_at or checkpoint.started_at,
                checkpoint.status == "ok",
                {
                    "aios.step.seq": checkpoint.seq,
                    "aios.step.attempt": checkpoint.attempt,
                    "aios.step.status": checkpoint.status,
                },
            )
        )
        spans += [_call_span(trace_id, step_id, entry) for entry in checkpoint.entries]
    start = run.started_at or run.created_at
    end = run.finished_at or max(
        (c.finished_at or c.started_at for c in checkpoints), default=start
    )
    spans.insert(
        0,
        _span(
            trace_id,
            run_span_id,
            None,
            f"run {run.agent.pipeline}",
            start,
            end,
            run.status != "failed",
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": run.agent.name,
                "gen_ai.agent.id": run.agent.slug,
                "aios.run.id": run.pk,
                "aios.run.status": run.status,
                "aios.run.trigger": run.trigger,
                "aios.cost": float(run.cost),
            },
        ),
    )
    return spans


def run_trace(run: Run) -> dict[str, Any]:
    """The OTLP/JSON body for one run."""
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": _attributes(
                        {"service.name": "aios", "aios.workspace": run.workspace.slug}
                    )
                },
                "scopeSpans": [{"scope": {"name": "aios.agents"}, "spans": run_spans(run)}],
            }
        ]
    }


def export_run(*, run_id: int) -> bool:
    """Sends a run's trace to the configured OTLP/HTTP endpoint; False when none is set."""
    endpoint = settings.AIOS_OTEL_ENDPOINT
    if not endpoint:
        return False
    run = Run.objects.select_related("agent", "workspace").get(pk=run_id)
    request = urllib.request.Request(  # noqa: S310 - an operator-configured collector
        endpoint.rstrip("/") + "/v1/traces",
        data=json.dumps(run_trace(run)).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        return True
