from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from django.utils import timezone
from ninja import Router, Status
from ninja.pagination import paginate

from agents import selectors, services, traces
from agents.access import access_agent, access_provider, access_run
from agents.llm import endpoints, providers
from agents.llm.gateway import describe_routes
from agents.models import Agent
from agents.pipelines import PermanentError, pipeline_names
from agents.schemas import (
    AgentIn,
    AgentOut,
    AgentPatch,
    AnswerIn,
    CostOut,
    ForkIn,
    IntentExamplesIn,
    IntentOut,
    PolicyIn,
    PolicyOut,
    PriceIn,
    PriceOut,
    ProviderIn,
    ProviderOut,
    RouteOut,
    RunDetailOut,
    RunIn,
    RunOut,
)
from agents.services import Conflict
from agents.services import models as model_services
from aios_site.accounts.auth import request_workspace
from aios_site.accounts.models import Role
from aios_site.core.actors import Actor
from aios_site.paging import Paging

router = Router(tags=["agents and runs"])


def _checkpoint_out(checkpoint) -> dict:
    return {
        "seq": checkpoint.seq,
        "step": checkpoint.step,
        "attempt": checkpoint.attempt,
        "status": checkpoint.status,
        "error": checkpoint.error,
        "started_at": checkpoint.started_at,
        "finished_at": checkpoint.finished_at,
        "duration_ms": checkpoint.duration_ms,
        "transition": checkpoint.transition,
        "journal_summary": selectors.journal_summary(checkpoint.entries),
        "journal": checkpoint.entries,
    }


# -- agents -----------------------------------------------------------------------------------


@router.get("/pipelines", response=list[str])
def pipeline_list(request):
    """The registered pipelines an agent can run."""
    request_workspace(request)
    return pipeline_names()


@router.get("/agents", response=list[AgentOut])
def agent_list(request):
    membership = request_workspace(request)
    return selectors.agent_list(workspace_id=membership.workspace_id)


@router.post("/agents", response={201: AgentOut})
def agent_create(request, payload: AgentIn):
    membership = request_workspace(request, role=Role.OWNER)
    if Agent.objects.filter(workspace_id=membership.workspace_id, slug=payload.slug).exists():
        raise Conflict(f"an agent {payload.slug!r} already exists")
    agent = services.agent_create(
        workspace=membership.workspace, actor=Actor.of_user(membership.user), **payload.dict()
    )
    return Status(201, agent)


@router.get("/agents/{slug}", response=AgentOut)
def agent_detail(request, slug: str):
    return access_agent(membership=request_workspace(request), slug=slug)


@router.patch("/agents/{slug}", response=AgentOut)
def agent_update(request, slug: str, payload: AgentPatch):
    membership = request_workspace(request, role=Role.OWNER)
    agent = access_agent(membership=membership, slug=slug)
    return services.agent_update(
        agent=agent, actor=Actor.of_user(membership.user), **payload.dict(exclude_unset=True)
    )


@router.delete("/agents/{slug}", response={204: None})
def agent_delete(request, slug: str):
    membership = request_workspace(request, role=Role.OWNER)
    agent = access_agent(membership=membership, slug=slug)
    services.agent_delete(agent=agent, actor=Actor.of_user(membership.user))
    return Status(204, None)


# -- runs -------------------------------------------------------------------------------------


@router.post("/runs", response={200: RunOut, 201: RunOut})
def run_create(request, payload: RunIn):
    """Starts a run. A repeated `idempotency_key` returns the existing run with 200."""
    membership = request_workspace(request, role=Role.OPERATOR)
    agent = access_agent(membership=membership, slug=payload.agent)
    run, created = services.run_start(
        agent=agent,
        input=payload.input,
        idempotency_key=payload.idempotency_key,
        priority=payload.priority,
    )
    return Status(201 if created else 200, run)


@router.get("/runs", response=list[RunOut])
@paginate(Paging)
def run_list(request, agent: str | None = None, status: str | None = None):
    """Newest first; filter by agent slug and status; `limit` and `offset` page through."""
    membership = request_workspace(request)
    return selectors.run_list(
        workspace_id=membership.workspace_id, agent=agent, status=status
    ).select_related("forked_from")


@router.get("/runs/{run_id}", response=RunDetailOut)
def run_detail(request, run_id: int):
    run = access_run(membership=request_workspace(request), run_id=run_id)
    checkpoints = selectors.checkpoint_list(run=run)
    run.checkpoint_rows = [_checkpoint_out(c) for c in checkpoints]
    return run


@router.post("/runs/{run_id}/cancel", response=RunOut)
def run_cancel(request, run_id: int):
    run = access_run(membership=request_workspace(request, role=Role.OPERATOR), run_id=run_id)
    return services.run_cancel(run=run)


@router.post("/runs/{run_id}/answer", response=RunOut)
def run_answer(request, run_id: int, payload: AnswerIn):
    """Answers the question a run escalated; it continues where the pipeline said."""
    run = access_run(membership=request_workspace(request, role=Role.OPERATOR), run_id=run_id)
    return services.run_answer(run=run, answer=payload.answer)


@router.post("/runs/{run_id}/replay", response={201: RunOut})
def run_replay(request, run_id: int):
    """Re-executes a finished run from its journal; the new run's `replay_verdict` tells."""
    run = access_run(membership=request_workspace(request, role=Role.OPERATOR), run_id=run_id)
    return Status(201, services.run_replay(run=run))


@router.post("/runs/{run_id}/fork", response={201: RunOut})
def run_fork(request, run_id: int, payload: ForkIn):
    """A new live run from checkpoint `from_seq` with `state_patch` merged into its state."""
    run = access_run(membership=request_workspace(request, role=Role.OPERATOR), run_id=run_id)
    fork = services.run_fork(run=run, from_seq=payload.from_seq, state_patch=payload.state_patch)
    return Status(201, fork)


@router.get("/runs/{run_id}/trace")
def run_trace(request, run_id: int):
    """The run as OpenTelemetry spans (OTLP/JSON; GenAI conventions for model and tool calls)."""
    run = access_run(membership=request_workspace(request), run_id=run_id)
    return traces.run_trace(run)


@router.get("/costs", response=list[CostOut], tags=["costs"])
def cost_list(
    request,
    since: date | None = None,
    until: date | None = None,
    agent: str | None = None,
    group_by: Literal["agent", "model", "day", "tier"] = "agent",
):
    """Model spend from the cost ledger (default: the last 30 days), grouped."""
    membership = request_workspace(request)
    since = since or (timezone.localdate() - timedelta(days=30))
    return selectors.cost_summary(
        workspace_id=membership.workspace_id,
        since=since,
        until=until,
        agent=agent,
        group_by=group_by,
    )


# -- models: providers, prices, tier policy, intents --------------------------------------------


def _provider_out(provider) -> dict:
    from aios_site import crypto

    endpoint = providers.endpoint_of(provider)
    try:
        hint = crypto.hint(provider.api_key)
    except crypto.UnreadableSecret:
        hint = "unreadable: enter it again"
    return {
        "name": provider.name,
        "base_url": provider.base_url,
        "model_small": provider.model_small,
        "model_large": provider.model_large,
        "is_default": provider.is_default,
        "max_concurrency": endpoint.concurrency,
        "endpoint": endpoints.status(endpoint),
        "api_key": hint,
    }


@router.get("/providers", response=list[ProviderOut], tags=["models"])
def provider_list(request):
    """The workspace's own OpenAI-compatible providers (the settings' one is "default")."""
    membership = request_workspace(request)
    return [_provider_out(p) for p in selectors.provider_list(workspace_id=membership.workspace_id)]


@router.put("/providers/{name}", response=ProviderOut, tags=["models"])
def provider_put(request, name: str, payload: ProviderIn):
    """Creates or replaces a provider (owners). Its key is stored encrypted."""
    membership = request_workspace(request, role=Role.OWNER)
    if payload.name != name:
        raise PermanentError("the name in the path and the body differ")
    provider = model_services.provider_save(
        workspace=membership.workspace,
        name=name,
        base_url=payload.base_url,
        api_key=payload.api_key,
        model_small=payload.model_small,
        model_large=payload.model_large,
        is_default=payload.is_default,
        max_concurrency=payload.max_concurrency,
        prices={p.model: p.dict(exclude={"model"}) for p in payload.prices},
        actor=Actor.of_user(membership.user),
    )
    return _provider_out(provider)


@router.delete("/providers/{name}", response={204: None}, tags=["models"])
def provider_delete(request, name: str):
    membership = request_workspace(request, role=Role.OWNER)
    model_services.provider_delete(
        provider=access_provider(membership=membership, name=name),
        actor=Actor.of_user(membership.user),
    )
    return Status(204, None)


@router.get("/prices", response=list[PriceOut], tags=["models"])
def price_list(request):
    """Prices per million tokens: the workspace's own, then the defaults it does not override."""
    membership = request_workspace(request)
    return selectors.price_list(workspace_id=membership.workspace_id)


@router.put("/prices", response=PriceOut, tags=["models"])
def price_put(request, payload: PriceIn):
    membership = request_workspace(request, role=Role.OWNER)
    price = model_services.price_set(
        workspace=membership.workspace, actor=Actor.of_user(membership.user), **payload.dict()
    )
    return {**payload.dict(), "model": price.model, "scope": "workspace"}


@router.get("/model-policy", response=PolicyOut, tags=["models"])
def policy_detail(request):
    """The workspace's default tier policy, and what serves each capability now."""
    workspace = request_workspace(request).workspace
    return {
        "policy": workspace.model_policy,
        "routes": describe_routes(agent_policy={}, workspace=workspace),
    }


@router.put("/model-policy", response=PolicyOut, tags=["models"])
def policy_put(request, payload: PolicyIn):
    membership = request_workspace(request, role=Role.OWNER)
    model_services.workspace_policy_set(
        workspace=membership.workspace, policy=payload.policy, actor=Actor.of_user(membership.user)
    )
    return policy_detail(request)


@router.get("/agents/{slug}/routes", response=list[RouteOut], tags=["models"])
def agent_routes(request, slug: str):
    """What serves each capability for this agent: its policy over the workspace's."""
    membership = request_workspace(request)
    agent = access_agent(membership=membership, slug=slug)
    return describe_routes(agent_policy=agent.model_policy, workspace=membership.workspace)


@router.get("/intents", response=list[IntentOut], tags=["models"])
def intent_list(request):
    """The workspace's intents and how many labelled examples define each."""
    membership = request_workspace(request)
    return selectors.intent_counts(workspace_id=membership.workspace_id)


@router.post("/intents/examples", response={201: list[IntentOut]}, tags=["models"])
def intent_examples_add(request, payload: IntentExamplesIn):
    """Adds labelled messages (operators); they are embedded on the local tier."""
    membership = request_workspace(request, role=Role.OPERATOR)
    model_services.intent_examples_add(
        workspace=membership.workspace,
        examples=[(e.text, e.intent) for e in payload.examples],
        source="api",
    )
    return Status(201, selectors.intent_counts(workspace_id=membership.workspace_id))


@router.post("/intents/seed", response=list[IntentOut], tags=["models"])
def intent_seed(request):
    """Gives a workspace without examples the shipped e-commerce ones (Bitext, 27 intents)."""
    membership = request_workspace(request, role=Role.OPERATOR)
    model_services.intent_examples_seed(workspace=membership.workspace)
    return selectors.intent_counts(workspace_id=membership.workspace_id)
