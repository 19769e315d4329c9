"""Evals: a labelled dataset run through the real pipeline of its agent, proposing nothing.

Each item becomes a run of the workspace's support agent with the `eval` trigger: the same
steps, models, memory and checks as a customer's message, but the message is the item's
(nothing is read from or written to the shop's inbox) and `ctx.propose` records what the
policy would have decided instead of making a card (agents/context.py). Every model call is
in the cost ledger like any other. One EvalRun measures one configuration: a provider, or the
local tier alone, with the agent's tier policy and prompts or others named for the eval
(a tier policy, prompt versions); two of them over the same dataset compare item by item.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
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
        return [asdict(item) for item in KINDS[datasets.kind_of(name)].load(name)]
    except FileNotFoundError:
        raise EvalError(f"no dataset named {name!r}") from None


def dataset_names() -> list[str]:
    return [*sorted(path.stem for path in datasets.DATA.glob("*.jsonl")), "history"]


# Tier policies an owner can try from the Evals page, in words (an engineer may give any
# policy to `aios eval --tier-policy`); each is laid over the agent's own for the eval alone.
TIER_POLICIES: dict[str, tuple[str, dict[str, Any]]] = {
    "": ("as the agent is set up", {}),
    "remote-intents": (
        "the remote model reads every intent",
        {"classify": {"tier": "remote", "role": "small"}},
    ),
    "local-drafts": ("the local model writes", {"draft": {"tier": "local"}}),
    "template-drafts": ("templates only, no model writes", {"draft": {"tier": "template"}}),
}


def configuration(
    *, tier_policy: dict[str, Any] | str | None = None, prompts: dict[str, str] | None = None
) -> dict[str, Any]:
    """What an eval measures beyond its provider, checked: a tier policy (a preset's name or
    a policy) and prompt versions. EvalError names what is wrong."""
    from agents.llm import prompts as prompt_versions
    from agents.llm.routing import PolicyError, policy_validate

    if isinstance(tier_policy, str):
        if tier_policy not in TIER_POLICIES:
            raise EvalError(f"no tier policy named {tier_policy!r}")
        tier_policy = TIER_POLICIES[tier_policy][1]
    try:
        chosen = {
            "tier_policy": policy_validate(tier_policy or {}),
            "prompts": prompt_versions.validate(prompts or {}),
        }
    except (PolicyError, prompt_versions.PromptError) as error:
        raise EvalError(str(error)) from None
    return {key: value for key, value in chosen.items() if value}


def label_of(provider: str, chosen: dict[str, Any]) -> str:
    """The configuration in words: its model, and what else differs from the agent's."""
    from agents.llm import prompts as prompt_versions

    parts = [provider or LOCAL_ALONE]
    policy = chosen.get("tier_policy")
    if policy:
        named = [words for words, preset in TIER_POLICIES.values() if preset and preset == policy]
        parts.append(named[0] if named else "tier policy " + _compact_json(policy))
    for prompt, name in sorted((chosen.get("prompts") or {}).items()):
        parts.append(f"{prompt} prompt {name} ({prompt_versions.PROMPTS[prompt][name].summary})")
    return " · ".join(parts)[:200]


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def eval_start(
    *,
    workspace,
    dataset: str,
    provider: str = "",
    started_by: str = "",
    limit: int | None = None,
    configured: dict[str, Any] | None = None,
) -> EvalRun:
    """A new EvalRun for one configuration (a provider, and `configured` as `configuration`
    returns it), checked before anything runs."""
    from agents.models import Provider

    _agent_for(workspace.pk, dataset)
    if provider and not Provider.objects.filter(workspace=workspace, name=provider).exists():
        raise EvalError(f"no provider named {provider!r} in this workspace")
    remote = [
        c
        for c, r in ((configured or {}).get("tier_policy") or {}).items()
        if r.get("tier") == "remote"
    ]
    if remote and not provider:
        raise EvalError(
            f"the tier policy sends {', '.join(remote)} to a remote model: choose its provider"
        )
    items = dataset_items(dataset, workspace_id=workspace.pk)
    if not items:
        raise EvalError(f"the dataset {dataset!r} has no items yet")
    return EvalRun.objects.create(
        workspace=workspace,
        dataset=dataset,
        provider=provider,
        configuration=configured or {},
        label=label_of(provider, configured or {}),
        items=len(items[:limit] if limit else items),
        started_by=started_by,
    )


def eval_execute(*, eval_run_id: int, limit: int | None = None, on_item=None) -> EvalRun:
    """Runs every item (here, in this process) and scores it; the totals at the end."""
    eval_run = EvalRun.objects.select_related("workspace").get(pk=eval_run_id)
    if eval_run.status != EvalStatus.RUNNING:
        raise Conflict(f"this eval is {eval_run.status}")
    try:
        agent = _agent_for(eval_run.workspace_id, eval_run.dataset)
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


def _agent_for(workspace_id: int, dataset: str) -> Agent:
    """The agent a dataset measures: the support agent for messages, the product copywriter
    for products."""
    kind = KINDS[datasets.kind_of(dataset)]
    pipeline, called = kind.pipeline, kind.agent
    agent = (
        Agent.objects.filter(workspace_id=workspace_id, pipeline=pipeline, enabled=True)
        .order_by("pk")
        .first()
    )
    if agent is None:
        raise EvalError(f"this workspace has no enabled agent to evaluate: the {called}")
    return agent


def _run_item(eval_run: EvalRun, agent: Agent, item: dict[str, Any]) -> EvalResult:
    from agents.services import run_start

    started = time.perf_counter()
    kind = KINDS[datasets.kind_of(eval_run.dataset)]
    run, _ = run_start(
        agent=agent,
        input={
            **kind.input(item),
            "eval_provider": eval_run.provider or None,
            "eval_local_only": not eval_run.provider,
            "eval_tier_policy": eval_run.configuration.get("tier_policy") or None,
            "eval_prompts": eval_run.configuration.get("prompts") or None,
        },
        trigger=Trigger.EVAL,
        trigger_ref=f"eval:{eval_run.pk}:{item['id']}"[:200],
        priority=Priority.BULK,  # never ahead of a customer's message
    )
    run = _settle(run)
    return kind.score(eval_run, item, run, (time.perf_counter() - started) * 1000)


def _message_of(item: dict[str, Any]) -> dict[str, Any]:
    """What the pipeline may see of an item: the message, never its labels."""
    return {key: item.get(key) for key in ("id", "subject", "body", "order")}


def _product_of(item: dict[str, Any]) -> dict[str, Any]:
    """What the pipeline may see of a product item: the product, never its labels."""
    keys = ("id", "title", "body_html", "vendor", "product_type", "tags", "options", "variants")
    return {key: item.get(key) for key in keys}


def _brief_of(item: dict[str, Any]) -> dict[str, Any]:
    """What the pipeline may see of a brief item: the brief, never its labels."""
    return {key: item.get(key) for key in ("id", "topic", "audience", "channels", "languages")}


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


def _journal(run: Run) -> dict[tuple[str, str], JournalEntry]:
    """The first successful entry of each kind and name in a run's journal."""
    journal: dict[tuple[str, str], JournalEntry] = {}
    for entry in JournalEntry.objects.filter(run=run, ok=True).order_by("seq", "position"):
        journal.setdefault((entry.kind, entry.name), entry)
    return journal


def _proposed(journal) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the run would have proposed (its payload) and the policy's verdict on it; both
    empty where it proposed nothing."""
    proposal = next((e for (kind, _), e in journal.items() if kind == JournalKind.PROPOSAL), None)
    if proposal is None:
        return {}, {}
    return proposal.request.get("payload") or {}, proposal.response or {}


def _detected(entry: JournalEntry | None) -> str:
    return entry.response["results"][0]["language"] if entry else ""


def _result(eval_run, item, run: Run, latency_ms: float, *, draft, verdict, checks, **found):
    """The scored item: what it wrote against what it must and must not say, what the policy
    decided, what it cost."""
    body = _normal(draft)
    cost = CostEntry.objects.filter(run=run).aggregate(total=Sum("cost"))["total"]
    return EvalResult.objects.create(
        eval_run=eval_run,
        item_id=item["id"],
        run=run,
        language=item.get("language") or "",
        intent=item.get("intent") or "",
        draft=draft,
        decision=verdict.get("decision", ""),
        rule=verdict.get("rule", "")[:300],
        facts=verdict.get("facts") or {},
        checks_failed=[c for c in checks or [] if not c.get("ok", True)],
        required=list(item.get("must_contain") or []),
        missing=[f for f in item.get("must_contain") or [] if _normal(f) not in body],
        forbidden=[f for f in item.get("must_not_contain") or [] if _normal(f) in body],
        auto_ok=bool(item.get("auto_ok", True)),
        cost=cost or Decimal("0"),
        latency_ms=round(latency_ms, 1),
        error="" if run.status == RunStatus.SUCCEEDED else (run.error or run.status)[:2000],
        **found,
    )


def _score_item(eval_run, item, run: Run, latency_ms: float) -> EvalResult:
    journal = _journal(run)
    payload, verdict = _proposed(journal)
    # The first language found is the message's, not the draft's (its check asks again).
    detected = journal.get((JournalKind.MODEL, "detect_language"))
    classified = journal.get((JournalKind.MODEL, "classify"))
    intent = (classified.response["results"][0] if classified else {}) or {}
    return _result(
        eval_run,
        item,
        run,
        latency_ms,
        draft=payload.get("body", ""),
        verdict=verdict,
        checks=payload.get("checks"),
        detected_language=_detected(detected),
        predicted_intent=intent.get("intent", ""),
        confidence=intent.get("confidence"),
        tier=payload.get("tier", ""),
    )


def _draft_language(run: Run, checks: list[dict], asked: str) -> str:
    """The language the kept draft is in: the one asked for where its language check passed
    (a template's own, or the detector's verdict), else what the detector last found."""
    if any(
        c.get("check") == "language" and c.get("ok") for c in checks if c.get("language") == asked
    ):
        return asked
    last = (
        JournalEntry.objects.filter(
            run=run, ok=True, kind=JournalKind.MODEL, name="detect_language"
        )
        .order_by("-seq", "-position")
        .first()
    )
    return _detected(last) if last else ""


def _score_description(eval_run, item, run: Run, latency_ms: float) -> EvalResult:
    """A product's description: its language is the one the draft's check found; a product
    whose description is kept (no model, and a better text than a list of attributes) has no
    draft and no decision."""
    from catalog import html

    payload, verdict = _proposed(_journal(run))
    written = (payload.get("descriptions") or {}).get(item["language"], "")
    return _result(
        eval_run,
        item,
        run,
        latency_ms,
        draft=html.visible_text(written) if written else "",
        verdict=verdict or {"decision": "kept"},
        checks=payload.get("checks"),
        detected_language=_draft_language(run, payload.get("checks") or [], item["language"]),
        tier=(payload.get("drafted_by") or {}).get(item["language"], ""),
    )


def _score_brief(eval_run, item, run: Run, latency_ms: float) -> EvalResult:
    """A brief's posts, every channel in every language, as one text: what they state and
    must not (the shop's products the brief is not about), their failed checks, the verdict."""
    from catalog.content.formats import FORMATS, payload_key

    payload, verdict = _proposed(_journal(run))
    posts = [
        payload.get(payload_key(channel, language, name)) or ""
        for channel in item["channels"]
        for language in item["languages"]
        for name in (FORMATS[channel].title, "body")
        if name
    ]
    failed = payload.get("checks") or []  # the posts' failed checks only
    wrong_language = any(
        c.get("check") == "language" and c.get("language") == item["language"] for c in failed
    )
    tiers = set((payload.get("drafted_by") or {}).values())
    return _result(
        eval_run,
        item,
        run,
        latency_ms,
        draft="\n\n".join(post for post in posts if post),
        verdict=verdict,
        checks=[{**c, "ok": False} for c in failed],
        detected_language="" if wrong_language or not verdict else item["language"],
        tier="template" if "template" in tiers else (tiers.pop() if tiers else ""),
    )


@dataclass(frozen=True)
class Kind:
    """What a kind of dataset is measured with: the agent's pipeline and what an owner calls
    it, how its items load, what the pipeline is given of an item, how a run is scored."""

    pipeline: str
    agent: str
    load: Callable[[str], list[Any]]
    input: Callable[[dict[str, Any]], dict[str, Any]]
    score: Callable[..., EvalResult]


KINDS = {
    "messages": Kind(
        "catalog.reply_to_customer",
        "support agent",
        datasets.load,
        lambda item: {"eval_item": _message_of(item)},
        _score_item,
    ),
    "products": Kind(
        "catalog.describe_product",
        "product description writer",
        datasets.load_products,
        lambda item: {"eval_product": _product_of(item), "languages": [item["language"]]},
        _score_description,
    ),
    "briefs": Kind(
        "content.post",
        "content writer (a new brief adds it)",
        datasets.load_briefs,
        lambda item: {"eval_brief": _brief_of(item)},
        _score_brief,
    ),
}


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
