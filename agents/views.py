"""Runs and agents pages. Thin: parse, check access, call one service, render."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from agents import llm, selectors, services
from agents.access import access_agent, access_provider, access_run
from agents.llm import endpoints, local_lm, prompts, providers
from agents.llm.gateway import describe_routes
from agents.llm.routing import PolicyError
from agents.models import Priority, RunStatus
from agents.pipelines import PermanentError, get_pipeline, pipeline_names
from agents.services import models as model_services
from aios_site.accounts.models import Role
from aios_site.core.actors import Actor
from aios_site.errors import error_detail
from aios_site.pages import page_membership, render_page

PAGE_SIZE = 50


@login_required
def run_list(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug)
    agent, status = request.GET.get("agent") or None, request.GET.get("status") or None
    runs = selectors.run_list(workspace_id=membership.workspace_id, agent=agent, status=status)
    page = Paginator(runs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "membership": membership,
        "section": "runs",
        "title": "Runs",
        "page": page,
        "agents": selectors.agent_list(workspace_id=membership.workspace_id),
        "statuses": RunStatus.values,
        "filter_agent": agent or "",
        "filter_status": status or "",
    }
    partial = "run-table" if request.htmx and request.htmx.target == "run-table" else "content"
    return render_page(request, "agents/runs.html", context, partial=partial)


@login_required
def run_detail(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    membership = page_membership(request, slug)
    run = access_run(membership=membership, run_id=run_id)
    context = selectors.run_detail_context(run_id=run.pk)
    compare = None
    if run.parent_id and run.parent.workspace_id == membership.workspace_id:
        compare = selectors.run_detail_context(run_id=run.parent_id)
    context.update(
        membership=membership,
        section="runs",
        title=f"Run {run.pk}",
        compare=compare,
        can_operate=membership.has_role(Role.OPERATOR),
    )
    return render_page(request, "agents/run_detail.html", context)


def _run_action(request, slug: str, run_id: int, action) -> HttpResponse:
    membership = page_membership(request, slug, Role.OPERATOR)
    run = access_run(membership=membership, run_id=run_id)
    try:
        target = action(run)
    except (services.Conflict, PermanentError, ValueError) as error:
        messages.error(request, str(error))
        target = run
    return redirect("run_detail", slug=slug, run_id=target.pk)


@login_required
@require_POST
def run_answer(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    answer = request.POST.get("answer", "")
    return _run_action(
        request, slug, run_id, lambda run: services.run_answer(run=run, answer=answer)
    )


@login_required
@require_POST
def run_cancel(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    return _run_action(request, slug, run_id, lambda run: services.run_cancel(run=run))


@login_required
@require_POST
def run_replay(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    return _run_action(request, slug, run_id, lambda run: services.run_replay(run=run))


@login_required
@require_POST
def run_fork(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    def fork(run):
        patch = json.loads(request.POST.get("state_patch") or "{}")
        if not isinstance(patch, dict):
            raise ValueError("the state patch must be a JSON object")
        return services.run_fork(
            run=run, from_seq=int(request.POST.get("from_seq", 0)), state_patch=patch
        )

    return _run_action(request, slug, run_id, fork)


@login_required
def agent_list(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug)
    workspace = membership.workspace
    agents = list(selectors.agent_list(workspace_id=workspace.pk))
    spend = selectors.spend_bars(workspace=workspace, agents=agents)
    for agent in agents:
        pipeline = _pipeline(agent)
        agent.purpose = pipeline.purpose if pipeline else ""
        agent.routes = describe_routes(agent_policy=agent.model_policy, workspace=workspace)
        uses = pipeline.capabilities if pipeline and pipeline.capabilities is not None else None
        agent.missing = [
            {**r, "words": CAPABILITY_WORDS.get(r["capability"], r["capability"])}
            for r in agent.routes
            if not r["ready"] and (uses is None or r["capability"] in uses)
        ]
        agent.spend = spend[agent.pk]
        agent.policy_json = json.dumps(agent.model_policy, indent=1)
        agent.prompt_choices = _prompt_choices(agent)
    context = {
        "membership": membership,
        "section": "agents",
        "title": "Agents",
        "agents": [agent for agent in agents if agent.purpose],
        "developer_agents": [agent for agent in agents if not agent.purpose],
        "workspace_spend": spend[None],
        "pipelines": pipeline_names(),
        "priorities": Priority.values,
        "can_operate": membership.has_role(Role.OPERATOR),
        "is_owner": membership.has_role(Role.OWNER),
    }
    return render_page(request, "agents/agents.html", context)


# What each capability is for, as the Agents page tells an owner what a missing model stops.
CAPABILITY_WORDS = {
    "draft": "writing drafts",
    "outline": "outlining posts",
    "ideate": "finding ideas",
    "classify": "reading what customers ask about",
    "plan": "planning its steps",
}


def _pipeline(agent):
    try:
        return get_pipeline(agent.pipeline)
    except PermanentError:  # a pipeline this code base no longer has
        return None


@login_required
@require_POST
def agent_switch(request: HttpRequest, slug: str, agent_slug: str) -> HttpResponse:
    """Turns an agent on or off (owners): off, it starts no run; runs under way finish."""
    membership = page_membership(request, slug, Role.OWNER)
    agent = access_agent(membership=membership, slug=agent_slug)
    enabled = request.POST.get("enabled") == "on"
    services.agent_update(agent=agent, actor=Actor.of_user(request.user), enabled=enabled)
    messages.success(request, f"{agent.name} is {'on' if enabled else 'off'}.")
    return redirect(f"{reverse('agents', args=[slug])}#agent-{agent.slug}")


@login_required
@require_POST
def agent_settings(request: HttpRequest, slug: str, agent_slug: str) -> HttpResponse:
    """An agent's tier policy, budgets and webhook topics (owners: they decide what may be
    spent and what starts it)."""
    membership = page_membership(request, slug, Role.OWNER)
    agent = access_agent(membership=membership, slug=agent_slug)
    form = request.POST
    try:
        fields = {
            "model_policy": json.loads(form.get("model_policy") or "{}"),
            "daily_budget": _money(form.get("daily_budget")),
            "monthly_budget": _money(form.get("monthly_budget")),
        }
        prompts = {
            name: form[f"prompt_{name}"]
            for name in _pipeline_prompts(agent)
            if f"prompt_{name}" in form
        }
        if prompts:
            fields["prompt_versions"] = {**agent.prompt_versions, **prompts}
        if "webhook_topics" in form:
            fields["webhook_topics"] = services.webhook_topics_parse(form["webhook_topics"])
        services.agent_update(agent=agent, actor=Actor.of_user(request.user), **fields)
        messages.success(request, f"Saved {agent.name}.")
    except (ValueError, PolicyError) as error:
        messages.error(request, f"Not saved: {error}")
    return redirect(f"{reverse('agents', args=[slug])}#agent-{agent.slug}")


def _pipeline_prompts(agent) -> tuple[str, ...]:
    try:
        return get_pipeline(agent.pipeline).prompts
    except PermanentError:  # a pipeline since removed: nothing to choose
        return ()


def _prompt_choices(agent) -> list[dict]:
    """Each prompt the agent writes with: its versions, and the one it uses."""
    return [
        {
            "name": name,
            "chosen": prompts.agent_version(agent, name).name,
            "versions": prompts.choices(name),
        }
        for name in _pipeline_prompts(agent)
    ]


MAX_BUDGET = Decimal(10**8)  # what the budget columns hold


def _money(value: str | None) -> Decimal | None:
    """A budget from a form: blank is no cap; anything else must be a sum ≥ 0."""
    if not (value or "").strip():
        return None
    try:
        amount = Decimal(value.strip())
    except InvalidOperation as error:
        raise ValueError(f"{value!r} is not an amount") from error
    if not amount.is_finite() or not 0 <= amount < MAX_BUDGET:
        raise ValueError(f"a budget is an amount from 0 to less than {MAX_BUDGET}")
    return amount.quantize(Decimal("0.0001"))


def _whole(value: str | None) -> int | None:
    """How many requests at once, from a form: blank is the provider's default."""
    if not (value or "").strip():
        return None
    if not value.strip().isdigit() or not 1 <= int(value) <= 1000:
        raise ValueError("requests at once is a whole number from 1 to 1000")
    return int(value)


@login_required
def cost_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Model spend per agent, model, tier and day, from the ledger."""
    membership = page_membership(request, slug)
    days = 30 if request.GET.get("days") not in {"1", "7", "90"} else int(request.GET["days"])
    since = timezone.localdate() - timedelta(days=days - 1)
    groups = {
        group: selectors.cost_summary(
            workspace_id=membership.workspace_id, since=since, group_by=group
        )
        for group in ("agent", "model", "tier", "day")
    }
    peak = max((row["cost"] for row in groups["day"]), default=0) or 1
    for row in groups["day"]:
        row["percent"] = float(row["cost"] / peak * 100)
    context = {
        "membership": membership,
        "section": "costs",
        "title": "Costs",
        "days": days,
        "since": since,
        "groups": groups,
        "total": sum((row["cost"] for row in groups["agent"]), Decimal("0")),
        "calls": sum(row["calls"] for row in groups["agent"]),
    }
    return render_page(request, "agents/costs.html", context)


@login_required
@require_POST
def agent_create(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug, Role.OWNER)
    try:
        services.agent_create(
            workspace=membership.workspace,
            actor=Actor.of_user(request.user),
            slug=request.POST.get("slug", "").strip(),
            name=request.POST.get("name", "").strip() or request.POST.get("slug", ""),
            pipeline=request.POST.get("pipeline", ""),
            priority=request.POST.get("priority")
            if request.POST.get("priority") in Priority.values
            else Priority.DEFAULT,
        )
    except Exception as error:  # a duplicate slug or an unknown pipeline: tell, do not crash
        messages.error(request, f"Could not create the agent: {error}")
    return redirect("agents", slug=slug)


@login_required
@require_POST
def agent_run(request: HttpRequest, slug: str, agent_slug: str) -> HttpResponse:
    membership = page_membership(request, slug, Role.OPERATOR)
    agent = access_agent(membership=membership, slug=agent_slug)
    try:
        run_input = json.loads(request.POST.get("input") or "{}")
        if not isinstance(run_input, dict):
            raise ValueError("the input must be a JSON object")
        run, _ = services.run_start(agent=agent, input=run_input)
    except (ValueError, services.Conflict) as error:
        messages.error(request, str(error))
        return redirect("agents", slug=slug)
    return redirect("run_detail", slug=slug, run_id=run.pk)


@login_required
def model_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Providers, prices, the workspace's default tier policy and its intents."""
    membership = page_membership(request, slug)
    workspace = membership.workspace
    settings_endpoint = providers.settings_endpoint()
    context = {
        "membership": membership,
        "section": "models",
        "title": "Models",
        "providers": [
            {"row": row, "endpoint": endpoints.status(providers.endpoint_of(row))}
            for row in selectors.provider_list(workspace_id=workspace.pk)
        ],
        "settings_provider": settings_endpoint,
        "settings_status": endpoints.status(settings_endpoint) if settings_endpoint else None,
        "prices": selectors.price_list(workspace_id=workspace.pk),
        "routes": describe_routes(agent_policy={}, workspace=workspace),
        "policy_json": json.dumps(workspace.model_policy, indent=1),
        "capabilities": llm.CAPABILITIES.values(),
        "intents": selectors.intent_counts(workspace_id=workspace.pk),
        "local_lm": local_lm.configured_path(),
        "is_owner": membership.has_role(Role.OWNER),
        "can_operate": membership.has_role(Role.OPERATOR),
    }
    return render_page(request, "agents/models.html", context)


def _provider_from_form(request, workspace) -> None:
    model_services.provider_save(
        workspace=workspace,
        actor=Actor.of_user(request.user),
        name=request.POST.get("name", "").strip(),
        base_url=request.POST.get("base_url", "").strip(),
        api_key=request.POST.get("api_key") or None,  # blank keeps the stored key
        model_small=request.POST.get("model_small", "").strip(),
        model_large=request.POST.get("model_large", "").strip(),
        is_default=request.POST.get("is_default") == "on",
        max_concurrency=_whole(request.POST.get("max_concurrency")),
    )


def _price_from_form(request, workspace) -> None:
    model_services.price_set(
        workspace=workspace,
        actor=Actor.of_user(request.user),
        model=request.POST.get("model", "").strip(),
        input_per_million=_money(request.POST.get("input_per_million")) or Decimal(0),
        output_per_million=_money(request.POST.get("output_per_million")) or Decimal(0),
    )


def _provider_delete(request, membership) -> None:
    provider = access_provider(membership=membership, name=request.POST.get("name", ""))
    model_services.provider_delete(provider=provider, actor=Actor.of_user(request.user))


# action -> (role needed, what it does with (request, membership))
MODEL_ACTIONS = {
    "provider": (Role.OWNER, lambda r, m: _provider_from_form(r, m.workspace)),
    "provider-delete": (Role.OWNER, _provider_delete),
    "price": (Role.OWNER, lambda r, m: _price_from_form(r, m.workspace)),
    "policy": (
        Role.OWNER,
        lambda r, m: model_services.workspace_policy_set(
            workspace=m.workspace,
            policy=json.loads(r.POST.get("model_policy") or "{}"),
            actor=Actor.of_user(r.user),
        ),
    ),
    "intents-seed": (
        Role.OPERATOR,
        lambda r, m: model_services.intent_examples_seed(workspace=m.workspace),
    ),
}


@login_required
@require_POST
def model_action(request: HttpRequest, slug: str, action: str) -> HttpResponse:
    if action not in MODEL_ACTIONS:
        raise Http404("No such action.")
    role, perform = MODEL_ACTIONS[action]
    membership = page_membership(request, slug, role)
    try:
        perform(request, membership)
        messages.success(request, "Saved.")
    except (ValueError, PolicyError, ValidationError, IntegrityError) as error:
        messages.error(request, f"Not saved: {error_detail(error)}")
    return redirect("models", slug=slug)
