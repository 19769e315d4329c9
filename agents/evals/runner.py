"""Evals: a labelled dataset run through the real reply pipeline, proposing nothing.

Each item becomes a run of the workspace's support agent with the `eval` trigger: the same
steps, models, memory and checks as a customer's message, but the message is the item's
(nothing is read from or written to the shop's inbox) and `ctx.propose` records what the
policy would have decided instead of making a card (agents/context.py). Every model call is
in the cost ledger like any other. One EvalRun measures one configuration: a provider, or the
local tier alone; two of them over the same dataset compare item by item.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from agents.evals import datasets
from agents.models import (
    Agent,
    CostEntry,
    EvalResult,
    EvalRun,
    EvalStatus,
    JournalEntry,
    JournalKind,
    Priority,
    Run,
    RunStatus,
    Trigger,
)
from aios_site.core.errors import Conflict, PermanentError

PIPELINE = "catalog.reply_to_customer"
LOCAL_ALONE = "the local tier alone"
ITEM_SECONDS = 180.0  # an item still unsettled after this is scored as an error


class EvalError(PermanentError):
    """The eval cannot run: no such dataset, no support agent, no such provider."""


def dataset_items(name: str, *, workspace_id: int) -> list[dict[str, Any]]:
    """The items of a dataset as plain dicts: a shipped set (agents/evals/data) or `history`,
    the workspace's own decided reply cards."""
    if name == "history":
        from agents.evals.history import history_items

        return history_items(workspace_id=workspace_id)
    try:
        return [asdict(item) for item in datasets.load(name)]
    except FileNotFoundError:
        raise EvalError(f"no dataset named {name!r}") from None


def dataset_names() -> list[str]:
    return [*sorted(path.stem for path in datasets.DATA.glob("*.jsonl")), "history"]


def eval_start(
    *, workspace, dataset: str, provider: str = "", started_by: str = "", limit: int | None = None
) -> EvalRun:
    """A new EvalRun for one configuration, checked before anything runs."""
    from agents.models import Provider

    _support_agent(workspace.pk)
    if provider and not Provider.objects.filter(workspace=workspace, name=provider).exists():
        raise EvalError(f"no provider named {provider!r} in this workspace")
    items = dataset_items(dataset, workspace_id=workspace.pk)
    if not items:
        raise EvalError(f"the dataset {dataset!r} has no items yet")
    return EvalRun.objects.create(
        workspace=workspace,
        dataset=dataset,
        provider=provider,
        label=provider or LOCAL_ALONE,
        items=len(items[:limit] if limit else items),
        started_by=started_by,
    )


def eval_execute(*, eval_run_id: int, limit: int | None = None, on_item=None) -> EvalRun:
    """Runs every item (here, in this process) and scores it; the totals at the end."""
    eval_run = EvalRun.objects.select_related("workspace").get(pk=eval_run_id)
    if eval_run.status != EvalStatus.RUNNING:
        raise Conflict(f"this eval is {eval_run.status}")
    try:
        agent = _support_agent(eval_run.workspace_id)
        items = dataset_items(eval_run.dataset, workspace_id=eval_run.workspace_id)
        done = set(eval_run.results.values_list("item_id", flat=True))
        for item in items[:limit] if limit else items:
            if item["id"] in done:  # resumed after a restart: what was scored stands
                continue
            result = _run_item(eval_run, agent, item)
            if on_item:
                on_item(result)
    except Exception as error:
        EvalRun.objects.filter(pk=eval_run.pk).update(
            status=EvalStatus.FAILED, error=str(error)[:2000], finished_at=timezone.now()
        )
        raise
    eval_run.scores = scores(list(eval_run.results.all()))
    eval_run.status, eval_run.finished_at = EvalStatus.DONE, timezone.now()
    eval_run.save(update_fields=["scores", "status", "finished_at"])
    return eval_run


def _support_agent(workspace_id: int) -> Agent:
    agent = (
        Agent.objects.filter(workspace_id=workspace_id, pipeline=PIPELINE, enabled=True)
        .order_by("pk")
        .first()
    )
    if agent is None:
        raise EvalError("this workspace has no enabled support agent to evaluate")
    return agent


def _run_item(eval_run: EvalRun, agent: Agent, item: dict[str, Any]) -> EvalResult:
    from agents.services import run_start

    started = time.perf_counter()
    run, _ = run_start(
        agent=agent,
        input={
            "eval_item": _message_of(item),
            "eval_provider": eval_run.provider or None,
            "eval_local_only": not eval_run.provider,
        },
        trigger=Trigger.EVAL,
        trigger_ref=f"eval:{eval_run.pk}:{item['id']}"[:200],
        priority=Priority.BULK,  # never ahead of a customer's message
    )
    run = _settle(run)
    return _score_item(eval_run, item, run, (time.perf_counter() - started) * 1000)


def _message_of(item: dict[str, Any]) -> dict[str, Any]:
    """What the pipeline may see of an item: the message, never its labels."""
    return {key: item.get(key) for key in ("id", "subject", "body", "order")}


def _settle(run: Run) -> Run:
    """Advances the run here until it ends (a worker that has it is waited for)."""
    from agents.services import run_advance

    deadline = time.monotonic() + ITEM_SECONDS
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
            return run
        if run.status == RunStatus.QUEUED:
            wait = (run.not_before - timezone.now()).total_seconds() if run.not_before else 0
            if wait > 0:
                time.sleep(min(wait, 1.0))
                continue
            run_advance(run_id=run.pk)
        else:
            time.sleep(0.1)
    return run


# -- scoring ---------------------------------------------------------------------------------


def _normal(text: str) -> str:
    """As the dataset's README says: case and spaces ignored, the multiplication sign and x
    the same."""
    return "".join(text.lower().replace("\u00d7", "x").split())


def _score_item(eval_run, item, run: Run, latency_ms: float) -> EvalResult:
    journal: dict[tuple[str, str], JournalEntry] = {}
    for entry in JournalEntry.objects.filter(run=run, ok=True).order_by("seq", "position"):
        # The first of each: the message's language, not the draft's (its check asks again).
        journal.setdefault((entry.kind, entry.name), entry)
    proposal = next((e for (kind, _), e in journal.items() if kind == JournalKind.PROPOSAL), None)
    detected = journal.get((JournalKind.MODEL, "detect_language"))
    classified = journal.get((JournalKind.MODEL, "classify"))
    payload = (proposal.request.get("payload") if proposal else None) or {}
    verdict = (proposal.response if proposal else None) or {}
    intent = (classified.response["results"][0] if classified else {}) or {}
    body = _normal(payload.get("body", ""))
    cost = CostEntry.objects.filter(run=run).aggregate(total=Sum("cost"))["total"]
    return EvalResult.objects.create(
        eval_run=eval_run,
        item_id=item["id"],
        run=run,
        language=item.get("language") or "",
        detected_language=(detected.response["results"][0]["language"] if detected else ""),
        intent=item.get("intent") or "",
        predicted_intent=intent.get("intent", ""),
        confidence=intent.get("confidence"),
        tier=payload.get("tier", ""),
        draft=payload.get("body", ""),
        decision=verdict.get("decision", ""),
        rule=verdict.get("rule", "")[:300],
        facts=verdict.get("facts") or {},
        checks_failed=[c for c in payload.get("checks") or [] if not c.get("ok", True)],
        required=list(item.get("must_contain") or []),
        missing=[f for f in item.get("must_contain") or [] if _normal(f) not in body],
        forbidden=[f for f in item.get("must_not_contain") or [] if _normal(f) in body],
        auto_ok=bool(item.get("auto_ok")),
        cost=cost or Decimal("0"),
        latency_ms=round(latency_ms, 1),
        error="" if run.status == RunStatus.SUCCEEDED else (run.error or run.status)[:2000],
    )


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def scores(results: list[EvalResult]) -> dict[str, Any]:
    """The totals of an eval: accuracy, what would have gone out alone and how much of it was
    right, checks, grounding, cost and latency."""
    labelled = [r for r in results if r.intent]
    auto = [r for r in results if r.auto_sent]
    grounded = [r for r in results if r.required]
    latencies = sorted(r.latency_ms for r in results) or [0.0]
    return {
        "items": len(results),
        "errors": sum(1 for r in results if r.error),
        "language_right": sum(1 for r in results if r.detected_language == r.language),
        "language_accuracy": _share(
            sum(1 for r in results if r.detected_language == r.language), len(results)
        ),
        "intent_accuracy": _share(
            sum(1 for r in labelled if r.predicted_intent == r.intent), len(labelled)
        ),
        "auto_sent": len(auto),
        "auto_right": sum(1 for r in auto if r.auto_right),
        "auto_precision": _share(sum(1 for r in auto if r.auto_right), len(auto)),
        "automated_share": _share(len(auto), len(results)),
        "checks_failed": sum(1 for r in results if r.checks_failed),
        "grounded_items": len(grounded),
        "grounded_right": sum(1 for r in grounded if not r.missing),
        "said_what_it_must_not": sum(1 for r in results if r.forbidden),
        "cost": str(sum((r.cost for r in results), Decimal("0"))),
        "latency_p50_ms": round(statistics.median(latencies), 1),
        "latency_p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
    }


def compared(first: EvalRun, second: EvalRun) -> list[dict[str, Any]]:
    """The items of two evals of one dataset side by side, those that differ first."""
    if first.dataset != second.dataset:
        raise EvalError("only evals of the same dataset compare item by item")
    theirs = {r.item_id: r for r in second.results.all()}
    rows = []
    for mine in first.results.all():
        other = theirs.get(mine.item_id)
        differs = other is None or (
            (mine.predicted_intent, mine.decision, mine.draft)
            != (other.predicted_intent, other.decision, other.draft)
        )
        rows.append({"item_id": mine.item_id, "first": mine, "second": other, "differs": differs})
    return sorted(rows, key=lambda row: not row["differs"])
