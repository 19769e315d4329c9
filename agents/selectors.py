"""Reads for agents and runs, scoped to a workspace."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet

from agents.models import Agent, Checkpoint, JournalEntry, Run


def agent_list(*, workspace_id: int) -> QuerySet[Agent]:
    return Agent.objects.filter(workspace_id=workspace_id).order_by("name")


def run_list(
    *, workspace_id: int, agent: str | None = None, status: str | None = None
) -> QuerySet[Run]:
    runs = (
        Run.objects.select_related("agent", "workspace")
        .filter(workspace_id=workspace_id)
        .exclude(trigger="eval")  # an eval's runs are on its own page
    )
    if agent:
        runs = runs.filter(agent__slug=agent)
    if status:
        runs = runs.filter(status=status)
    return runs.order_by("-created_at", "-pk")


def checkpoint_list(*, run: Run) -> list[Checkpoint]:
    """The run's checkpoints with their journal entries attached (two queries)."""
    checkpoints = list(run.checkpoints.order_by("seq", "attempt"))
    entries: dict[int, list[JournalEntry]] = defaultdict(list)
    for entry in JournalEntry.objects.filter(run=run).order_by("seq", "position", "pk"):
        entries[entry.checkpoint_id].append(entry)
    for checkpoint in checkpoints:
        checkpoint.entries = entries[checkpoint.pk]
    return checkpoints


def journal_summary(entries: list[JournalEntry]) -> dict[str, Any]:
    tokens = sum(
        (e.usage or {}).get("prompt_tokens", 0) + (e.usage or {}).get("completion_tokens", 0)
        for e in entries
    )
    return {
        "calls": len(entries),
        "failed": sum(1 for e in entries if not e.ok),
        "tokens": tokens,
        "cost": str(sum((e.cost for e in entries), start=0)),
        "latency_ms": round(sum(e.latency_ms for e in entries), 3),
    }


def state_diff(before: dict | None, after: dict | None) -> list[dict[str, Any]]:
    """Keys a step added, changed or removed."""
    before, after = before or {}, after or {}
    diff = []
    for key in sorted(set(before) | set(after)):
        if before.get(key, _MISSING) != after.get(key, _MISSING):
            diff.append(
                {
                    "key": key,
                    "before": before.get(key),
                    "after": after.get(key),
                    "change": "added"
                    if key not in before
                    else "removed"
                    if key not in after
                    else "changed",
                }
            )
    return diff


_MISSING = object()


def run_detail_context(*, run_id: int, with_steps: bool = True) -> dict[str, Any] | None:
    """Everything the run page and its live partials render."""
    run = (
        Run.objects.select_related("agent", "workspace", "parent", "forked_from")
        .filter(pk=run_id)
        .first()
    )
    if run is None:
        return None
    if not with_steps:
        return {"run": run}
    checkpoints = checkpoint_list(run=run)
    for checkpoint in checkpoints:
        checkpoint.diff = state_diff(checkpoint.state_before, checkpoint.state_after)
        checkpoint.summary = journal_summary(checkpoint.entries)
    return {"run": run, "checkpoints": checkpoints, "timeline": timeline(checkpoints)}


def timeline(checkpoints: list[Checkpoint]) -> list[dict[str, Any]]:
    """Bars for a Gantt-like view: each step attempt and each call, as % of the run's span."""
    if not checkpoints:
        return []
    start = min(c.started_at for c in checkpoints)
    end = max((c.finished_at or c.started_at) for c in checkpoints)
    span = max((end - start).total_seconds(), 0.001)
    bars = []
    for checkpoint in checkpoints:
        finished = checkpoint.finished_at or checkpoint.started_at
        offset = (checkpoint.started_at - start).total_seconds()
        bars.append(
            {
                "label": f"{checkpoint.seq}. {checkpoint.step}"
                + (f" (attempt {checkpoint.attempt})" if checkpoint.attempt > 1 else ""),
                "status": checkpoint.status,
                "kind": "step",
                "left": 100 * offset / span,
                "width": max(0.5, 100 * (finished - checkpoint.started_at).total_seconds() / span),
                "ms": checkpoint.duration_ms,
            }
        )
        for entry in checkpoint.entries:
            entry_offset = (entry.created_at - start).total_seconds() - entry.latency_ms / 1000
            bars.append(
                {
                    "label": f"{entry.kind} {entry.name}",
                    "status": "ok" if entry.ok else "error",
                    "kind": "call",
                    "left": max(0.0, 100 * entry_offset / span),
                    "width": max(0.5, 100 * entry.latency_ms / 1000 / span),
                    "ms": entry.latency_ms,
                }
            )
    return bars


COST_GROUPS = {"agent": "agent__slug", "model": "model", "day": "day", "tier": "tier"}


def cost_summary(
    *, workspace_id: int, since, group_by: str, until=None, agent: str | None = None
) -> list[dict[str, Any]]:
    """Spend from the ledger between two dates (inclusive), grouped by agent slug, model,
    day or tier."""
    from django.db.models import Avg, Count, Sum
    from django.db.models.functions import TruncDate

    from agents.models import CostEntry

    rows = CostEntry.objects.filter(workspace_id=workspace_id, created_at__date__gte=since)
    if until is not None:
        rows = rows.filter(created_at__date__lte=until)
    if agent:
        rows = rows.filter(agent__slug=agent)
    if group_by == "day":
        rows = rows.annotate(day=TruncDate("created_at"))
    field = COST_GROUPS[group_by]
    rows = (
        rows.values(field)
        .annotate(
            calls=Count("pk"),
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
            cost=Sum("cost"),
            cache_hits=Count("pk", filter=Q(cache_hit=True)),
            latency_ms=Avg("latency_ms"),
        )
        .order_by(field)
    )
    return [{"key": str(row.pop(field)), **row} for row in rows]


def spend_bars(*, workspace, agents) -> dict[int | None, list[dict[str, Any]]]:
    """Today's and this month's spend (settled + held) against each cap, per agent and for
    the workspace (key None), from the budget counters: one query."""
    from django.utils import timezone

    from agents.models import BudgetCounter

    today = timezone.localdate()
    starts = {"day": today, "month": today.replace(day=1)}
    counters = BudgetCounter.objects.filter(
        workspace=workspace, period_start__in=list(starts.values())
    )
    used = {
        (c.agent_id, c.period): c.spent + c.reserved
        for c in counters
        if c.period_start == starts[c.period]
    }
    owners = [(None, workspace), *((agent.pk, agent) for agent in agents)]
    return {
        key: [
            _bar(label, used.get((key, period), Decimal("0")), getattr(owner, f"{cap}_budget"))
            for period, cap, label in (("day", "daily", "Today"), ("month", "monthly", "Month"))
        ]
        for key, owner in owners
    }


def _bar(label: str, used: Decimal, cap: Decimal | None) -> dict[str, Any]:
    percent = min(100.0, float(used / cap * 100)) if cap else None
    return {"label": label, "used": used, "cap": cap, "percent": percent}


def provider_list(*, workspace_id: int):
    from agents.models import Provider

    return Provider.objects.filter(workspace_id=workspace_id)


def price_list(*, workspace_id: int) -> list[dict[str, Any]]:
    """The workspace's prices, then the installation's defaults it does not override."""
    from agents.models import ModelPrice

    prices = ModelPrice.objects.filter(Q(workspace_id=workspace_id) | Q(workspace=None))
    chosen: dict[str, dict[str, Any]] = {}
    for price in sorted(prices, key=lambda p: p.workspace_id is not None):
        chosen[price.model] = {
            "model": price.model,
            "input_per_million": price.input_per_million,
            "output_per_million": price.output_per_million,
            "scope": "workspace" if price.workspace_id else "default",
        }
    return sorted(chosen.values(), key=lambda row: row["model"])


def intent_counts(*, workspace_id: int) -> list[dict[str, Any]]:
    from django.db.models import Count

    from agents.models import IntentExample

    return list(
        IntentExample.objects.filter(workspace_id=workspace_id)
        .values("intent")
        .annotate(examples=Count("pk"))
        .order_by("intent")
    )


def eval_list(*, workspace_id: int):
    from agents.models import EvalRun

    return EvalRun.objects.filter(workspace_id=workspace_id).order_by("-created_at", "-pk")
