"""The board (the shop owner's queue of proposals), the audit page and the metrics. Thin."""

from __future__ import annotations

import json
from datetime import date, timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from agents.access import access_agent
from agents.models import Agent
from agents.pipelines import PermanentError
from aios_site.accounts.models import Role
from aios_site.errors import Conflict, error_detail
from aios_site.pages import page_membership, query_without_page, render_page
from approvals import charts, firstrun, outcomes, rulebuilder, selectors, services, suggestions
from approvals.access import access_proposal
from approvals.audit import Actor, audit_readable, audit_verify
from approvals.edits import edited_payload
from approvals.effectors import effector_names, get_effector
from approvals.models import PolicyRule, Proposal, WebhookEndpoint
from approvals.targets import target_context

PAGE_SIZE = 50
BOARD_PAGE_SIZE = 50
FILTERS = ("action", "object_type", "object_id", "actor")


@login_required
def audit_page(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug)
    filters = {name: request.GET.get(name, "").strip() for name in FILTERS}
    entries = selectors.audit_list(
        workspace_id=membership.workspace_id, **{k: v or None for k, v in filters.items()}
    )
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = audit_readable(page.object_list)
    context = {
        "membership": membership,
        "section": "audit",
        "title": "Audit",
        "page": page,
        "filters": filters,
        "query": query_without_page(request),
        "actions": selectors.audit_actions(workspace_id=membership.workspace_id),
        "verdict": audit_verify(workspace_id=membership.workspace_id)
        if request.GET.get("verify")
        else None,
    }
    partial = "audit-table" if request.htmx and request.htmx.target == "audit-table" else "content"
    return render_page(request, "approvals/audit.html", context, partial=partial)


# -- the board --------------------------------------------------------------------------------


@login_required
def board_page(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug)
    tab = request.GET.get("tab") if request.GET.get("tab") in selectors.BOARD_TABS else "pending"
    agent, risk = request.GET.get("agent") or None, request.GET.get("risk") or None
    proposals = selectors.board_list(
        workspace_id=membership.workspace_id, tab=tab, agent=agent, risk=risk
    )
    page = Paginator(proposals, BOARD_PAGE_SIZE).get_page(request.GET.get("page"))
    cards = selectors.board_cards(proposals=page.object_list)
    context = {
        "membership": membership,
        "section": "board",
        "title": "Board",
        "tab": tab,
        "tabs": selectors.board_tabs(workspace_id=membership.workspace_id),
        "page": page,
        "cards": cards,
        "agents": Agent.objects.filter(workspace_id=membership.workspace_id).order_by("slug"),
        "filters": {"agent": agent or "", "risk": risk or ""},
        "query": query_without_page(request),
        "can_decide": membership.has_role(Role.OPERATOR),
        "board_url": reverse("board", args=[slug]),  # cards build their action URLs on it
        "suggestions": _suggestions(membership) if tab == "pending" else [],
        "first_run": _first_run(membership, tab, page),
    }
    return render_page(request, "approvals/board.html", context)


@login_required
def board_detail(request: HttpRequest, slug: str, proposal_id: int) -> HttpResponse:
    """One card with all a person needs to judge it: the customer's message and their earlier
    ones, the order, the product as the shop has it, the sources, the run. In the pane beside
    the list (htmx), or a page of its own (a phone)."""
    membership = page_membership(request, slug)
    proposal = access_proposal(membership=membership, proposal_id=proposal_id)
    [card] = selectors.board_cards(proposal_ids=[proposal.pk])
    context = {
        "membership": membership,
        "section": "board",
        "title": card["headline"],
        "card": card,
        "context": target_context(membership.workspace_id, proposal.target),
        "can_decide": membership.has_role(Role.OPERATOR),
        "board_url": reverse("board", args=[slug]),
    }
    return render_page(request, "approvals/detail.html", context, partial="detail")


def _first_run(membership, tab: str, page) -> list:
    """The getting-started steps, on the waiting tab of a workspace that never had a card."""
    if tab != "pending" or page.paginator.count:
        return []
    if Proposal.objects.filter(workspace_id=membership.workspace_id).exists():
        return []
    return firstrun.first_run(membership.workspace_id)


def _suggestions(membership) -> list:
    """Owners change the policy, so only they are offered what history earned."""
    if not membership.has_role(Role.OWNER):
        return []
    rules = services.rules_for(workspace_id=membership.workspace_id)
    return suggestions.suggestions(workspace_id=membership.workspace_id, rules=rules)


@login_required
@require_POST
def board_suggestion(request: HttpRequest, slug: str, action: str) -> HttpResponse:
    membership = page_membership(request, slug, Role.OWNER)
    actor = Actor.of_user(request.user)
    try:
        if action == "accept":
            rule = suggestions.suggestion_accept(
                workspace=membership.workspace, key=request.POST.get("key", ""), actor=actor
            )
            messages.success(request, f"New rule: {rule['name']}.")
        elif action == "withdraw":
            suggestions.suggestion_withdraw(
                workspace=membership.workspace,
                rule_name=request.POST.get("rule", ""),
                actor=actor,
            )
            messages.success(request, "The rule is withdrawn: those cards wait for you again.")
        else:
            raise Http404("No such action.")
    except Conflict as error:
        messages.error(request, str(error))
    return redirect("board", slug=slug)


def _edited_payload(request: HttpRequest, proposal) -> dict | None:
    """The payload with the card's edit fields in place, or None when nothing was edited.
    Only the fields the effector offers are read (approvals/edits.py)."""
    if request.POST.get("edit") != "1":
        return None
    editable = get_effector(proposal.effector).edits(proposal.payload, workspace=proposal.workspace)
    return edited_payload(
        proposal.payload, editable, request.POST, tz=timezone.get_current_timezone()
    )


def _approve(request, membership, proposal):
    return services.proposal_approve(
        proposal=proposal,
        membership=membership,
        shown_hash=request.POST.get("payload_hash", ""),
        payload=_edited_payload(request, proposal),
    )


# action -> what it does with (request, membership, proposal)
BOARD_ACTIONS = {
    "approve": _approve,
    "reject": lambda r, m, p: services.proposal_reject(
        proposal=p,
        membership=m,
        reason=r.POST.get("reason", "").strip(),
        category=r.POST.get("category", ""),
    ),
    "undo": lambda r, m, p: services.proposal_undo(proposal=p, membership=m),
}


@login_required
@require_POST
def board_action(request: HttpRequest, slug: str, proposal_id: int, action: str) -> HttpResponse:
    if action not in BOARD_ACTIONS and action != "opened":
        raise Http404("No such action.")
    membership = page_membership(request, slug, Role.OPERATOR)
    proposal = access_proposal(membership=membership, proposal_id=proposal_id)
    if action == "opened":  # the member attended to the card (static/js/board.js)
        services.proposals_open(membership=membership, proposals=[proposal])
        return HttpResponse(status=204)
    error = ""
    try:
        BOARD_ACTIONS[action](request, membership, proposal)
    except (Conflict, PermissionDenied, PermanentError, ValidationError) as problem:
        error = error_detail(problem)
    if not request.htmx:
        if error:
            messages.error(request, f"Not done: {error}")
        return redirect(reverse("board", args=[slug]) + f"#proposal-{proposal_id}")
    [card] = selectors.board_cards(proposal_ids=[proposal_id])
    context = {
        "card": card,
        "can_decide": True,
        "error": error,
        "membership": membership,
        "board_url": reverse("board", args=[slug]),
    }
    return render(request, "approvals/board.html#card", context)


@login_required
@require_POST
def board_bulk(request: HttpRequest, slug: str) -> HttpResponse:
    """Approves the selected cards, each against the hash it was shown with."""
    membership = page_membership(request, slug, Role.OPERATOR)
    items = []
    for value in request.POST.getlist("selected"):
        proposal_id, _, shown_hash = value.partition(":")
        if proposal_id.isdigit():
            items.append((int(proposal_id), shown_hash))
    done, skipped = services.proposal_bulk(membership=membership, action="approve", items=items)
    messages.success(request, f"Approved {len(done)}.")
    for item in skipped:
        messages.error(request, f"#{item['id']} not approved: {item['reason']}")
    return redirect(reverse("board", args=[slug]) + (f"?{request.POST.get('back', '')}"))


# -- approval policy settings -----------------------------------------------------------------


@login_required
def policy_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The rules that decide proposals, and where webhooks may go (owners change them)."""
    membership = page_membership(request, slug)
    rules = services.rules_for(workspace_id=membership.workspace_id)
    measured = selectors.rule_measures(workspace_id=membership.workspace_id, rules=rules)
    context = {
        "membership": membership,
        "section": "settings",
        "title": "Approval policy",
        "rules": rules,
        "measured": measured,
        "rule_rows": list(
            zip(
                rules,
                measured["rules"] if measured else [None] * len(rules),
                [rulebuilder.rule_words(rule) for rule in rules],
                strict=True,
            )
        ),
        "rules_json": request.POST.get("rules") or json.dumps(rules, indent=1),
        "default": not PolicyRule.objects.filter(workspace_id=membership.workspace_id).exists(),
        "effectors": effector_names(),
        "kinds": rulebuilder.kinds(),
        "facts": rulebuilder.FACTS,
        "ops": rulebuilder.OPS.items(),
        "outcomes": [(key, words) for key, (words, _) in rulebuilder.OUTCOMES.items()],
        "condition_rows": range(1, rulebuilder.CONDITION_ROWS + 1),
        "builder": request.POST if request.POST.get("builder") else {},
        "endpoints": WebhookEndpoint.objects.filter(workspace_id=membership.workspace_id),
        "is_owner": membership.has_role(Role.OWNER),
    }
    return render_page(request, "approvals/policy.html", context)


def _rules_from_form(request, membership) -> None:
    try:
        rules = json.loads(request.POST.get("rules") or "[]")
    except json.JSONDecodeError as error:
        raise ValidationError(f"not JSON: {error.msg} (line {error.lineno})") from error
    services.rules_set(
        workspace=membership.workspace, rules=rules, actor=Actor.of_user(request.user)
    )


def _rule_add(request, membership) -> None:
    """The builder's rule, placed before the rule it names (default: before the catch-all
    last rule, so that it can decide at all)."""
    rules = services.rules_for(workspace_id=membership.workspace_id)
    rule = rulebuilder.rule_from_form(request.POST)
    position = request.POST.get("before", "")
    at = (
        int(position)
        if position.isdigit() and int(position) < len(rules)
        else max(len(rules) - 1, 0)
    )
    _rules_save(request, membership, [*rules[:at], rule, *rules[at:]])


def _rule_remove(request, membership) -> None:
    rules = services.rules_for(workspace_id=membership.workspace_id)
    _rules_save(
        request, membership, [r for i, r in enumerate(rules) if i != _index(request, rules)]
    )


def _rule_up(request, membership) -> None:
    rules = services.rules_for(workspace_id=membership.workspace_id)
    index = _index(request, rules)
    if index > 0:
        rules[index - 1], rules[index] = rules[index], rules[index - 1]
    _rules_save(request, membership, rules)


def _index(request, rules) -> int:
    index = request.POST.get("index", "")
    if not index.isdigit() or int(index) >= len(rules):
        raise ValidationError("no such rule: reload the page")
    return int(index)


def _rules_save(request, membership, rules) -> None:
    services.rules_set(
        workspace=membership.workspace, rules=rules, actor=Actor.of_user(request.user)
    )


def _endpoint_from_form(request, membership) -> None:
    services.webhook_endpoint_save(
        workspace=membership.workspace,
        name=request.POST.get("name", "").strip(),
        url=request.POST.get("url", "").strip(),
        secret=request.POST.get("secret", ""),
        actor=Actor.of_user(request.user),
    )


POLICY_ACTIONS = {
    "rules": _rules_from_form,
    "add": _rule_add,
    "remove": _rule_remove,
    "up": _rule_up,
    "endpoint": _endpoint_from_form,
}


@login_required
@require_POST
def policy_action(request: HttpRequest, slug: str, action: str) -> HttpResponse:
    if action not in POLICY_ACTIONS:
        raise Http404("No such action.")
    membership = page_membership(request, slug, Role.OWNER)
    try:
        POLICY_ACTIONS[action](request, membership)
    except ValidationError as error:
        messages.error(request, f"Not saved: {error_detail(error)}")
        return policy_page(request, slug)  # keeps what was typed
    messages.success(request, "Saved.")
    return redirect("approval_policy", slug=slug)


# -- business outcomes ------------------------------------------------------------------------

QUICK_RANGES = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (365, "a year")]


def _day(value: str | None, name: str) -> date | None:
    if not (value or "").strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError as error:
        raise ValidationError(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from error


def _quick_ranges(agent: str) -> list[dict[str, str]]:
    today = timezone.localdate()
    return [
        {
            "label": label,
            "query": urlencode(
                {"since": today - timedelta(days=days - 1), "until": today}
                | ({"agent": agent} if agent else {})
            ),
        }
        for days, label in QUICK_RANGES
    ]


@login_required
def metrics_page(request: HttpRequest, slug: str) -> HttpResponse:
    """What the agents did for the workspace: figures, charts per day, a table per agent, and
    the minutes each kind of work is worth here."""
    membership = page_membership(request, slug)
    agent_slug = request.GET.get("agent", "").strip()
    agent = access_agent(membership=membership, slug=agent_slug) if agent_slug else None
    error = ""
    try:
        window = outcomes.outcome_window(
            since=_day(request.GET.get("since"), "since"),
            until=_day(request.GET.get("until"), "until"),
        )
    except ValidationError as problem:
        error, window = error_detail(problem), outcomes.outcome_window()
    metrics = outcomes.outcome_metrics(workspace=membership.workspace, window=window, agent=agent)
    totals = metrics["totals"]
    context = {
        "membership": membership,
        "section": "metrics",
        "title": "Metrics",
        "metrics": metrics,
        "totals": totals,
        "charts": charts.outcome_charts(metrics),
        "empty": not any(
            (totals["tasks_completed"], totals["human_decisions"], totals["errors_prevented"])
        )
        and not totals["spend"],
        "error": error,
        "agents": Agent.objects.filter(workspace_id=membership.workspace_id).order_by("name"),
        "filters": {"since": window.since, "until": window.until, "agent": agent_slug},
        "ranges": _quick_ranges(agent_slug),
        "minutes": outcomes.outcome_minutes(workspace=membership.workspace),
        "review_cap": settings.AIOS_REVIEW_CAP_MINUTES,
        "is_owner": membership.has_role(Role.OWNER),
    }
    target = request.htmx.target if request.htmx else None
    partial = "metrics-body" if target == "metrics-body" else "content"
    return render_page(request, "approvals/metrics.html", context, partial=partial)


@login_required
@require_POST
def metrics_minutes(request: HttpRequest, slug: str) -> HttpResponse:
    """The workspace's own minutes per effector and pipeline (owners); blank is the default."""
    membership = page_membership(request, slug, Role.OWNER)
    minutes = {
        name.removeprefix("minutes:"): value.strip()
        for name, value in request.POST.items()
        if name.startswith("minutes:")
    }
    try:
        services.outcome_minutes_set(membership=membership, minutes=minutes)
        messages.success(request, "Saved the minutes.")
    except ValidationError as error:
        messages.error(request, f"Not saved: {error_detail(error)}")
    return redirect(reverse("metrics", args=[slug]) + "#minutes")
