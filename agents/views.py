"""Runs and agents pages. Thin: parse, check access, call one service, render."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from agents import selectors, services
from agents.access import access_agent, access_run
from agents.models import Priority, RunStatus
from agents.pipelines import PermanentError, pipeline_names
from aios_site.accounts.models import Role
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
    context = {
        "membership": membership,
        "section": "agents",
        "title": "Agents",
        "agents": selectors.agent_list(workspace_id=membership.workspace_id),
        "pipelines": pipeline_names(),
        "priorities": Priority.values,
        "can_operate": membership.has_role(Role.OPERATOR),
        "is_owner": membership.has_role(Role.OWNER),
    }
    return render_page(request, "agents/agents.html", context)


@login_required
@require_POST
def agent_create(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug, Role.OWNER)
    try:
        services.agent_create(
            workspace=membership.workspace,
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
