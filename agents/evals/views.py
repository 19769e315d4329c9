"""The Evals page: start an eval of a dataset, watch it score, compare two side by side.
Thin: parse, check access, call one service, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from agents import selectors
from agents.evals import runner
from agents.llm import prompts
from agents.models import EvalRun, Provider
from aios_site.accounts.models import Role
from aios_site.pages import page_membership, render_page
from aios_site.queues import send_later

DATASET_NAMES = {
    "support-messages": "Customer messages in 10 languages (shipped with AIOS)",
    "product-descriptions": "Product descriptions: 100 products in 4 languages (shipped)",
    "content-briefs": "Posts: 20 content briefs in 6 languages (shipped)",
    "history": "This shop's decided replies, last 30 days",
}


def _access_eval(membership, eval_id: int) -> EvalRun:
    found = EvalRun.objects.filter(workspace_id=membership.workspace_id, pk=eval_id).first()
    if found is None:
        raise Http404("No such eval.")
    return found


@login_required
def eval_list(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug)
    context = {
        "membership": membership,
        "section": "evals",
        "title": "Evals",
        "evals": selectors.eval_list(workspace_id=membership.workspace_id),
        "datasets": [(name, DATASET_NAMES.get(name, name)) for name in runner.dataset_names()],
        "providers": Provider.objects.filter(workspace_id=membership.workspace_id),
        "tier_policies": [(name, words) for name, (words, _) in runner.TIER_POLICIES.items()],
        "reply_wordings": prompts.choices("reply"),
        "can_operate": membership.has_role(Role.OPERATOR),
    }
    return render_page(request, "evals/evals.html", context)


@login_required
@require_POST
def eval_create(request: HttpRequest, slug: str) -> HttpResponse:
    from agents.tasks import eval_execute

    membership = page_membership(request, slug, Role.OPERATOR)
    try:
        configured = runner.configuration(
            tier_policy=request.POST.get("tier_policy", ""),
            prompts={
                name: request.POST[f"prompt_{name}"]
                for name in prompts.PROMPTS
                if request.POST.get(f"prompt_{name}")
            },
        )
        started = runner.eval_start(
            workspace=membership.workspace,
            dataset=request.POST.get("dataset", ""),
            provider=request.POST.get("provider", ""),
            configured=configured,
            started_by=request.user.get_username(),
        )
    except runner.EvalError as error:
        messages.error(request, f"Could not start the eval: {error}")
        return redirect("evals", slug=slug)
    send_later(eval_execute, started.pk)
    return redirect("eval_detail", slug=slug, eval_id=started.pk)


@login_required
def eval_detail(request: HttpRequest, slug: str, eval_id: int) -> HttpResponse:
    membership = page_membership(request, slug)
    shown = _access_eval(membership, eval_id)
    other = None
    if request.GET.get("compare", "").isdigit():
        other = _access_eval(membership, int(request.GET["compare"]))
    rows = (
        runner.compared(shown, other)
        if other and other.dataset == shown.dataset
        else [{"item_id": r.item_id, "first": r, "second": None} for r in shown.results.all()]
    )
    context = {
        "membership": membership,
        "section": "evals",
        "title": f"Eval: {DATASET_NAMES.get(shown.dataset, shown.dataset)}",
        "eval": shown,
        "other": other,
        "rows": rows,
        "scored": shown.results.count(),
        "comparable": selectors.eval_list(workspace_id=membership.workspace_id)
        .filter(dataset=shown.dataset)
        .exclude(pk=shown.pk),
    }
    partial = (
        "eval-progress" if request.htmx and request.htmx.target == "eval-progress" else "content"
    )
    return render_page(request, "evals/eval_detail.html", context, partial=partial)
