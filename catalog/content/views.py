"""The Content section: briefs (and the form for a new one), a brief with its drafts' versions
and posts, angles on demand, and the month's calendar. Thin: reads from the selectors,
writes through the services."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from agents.pipelines import PermanentError
from agents.services import Conflict
from aios_site.accounts.models import Membership, Role
from aios_site.errors import error_detail
from aios_site.pages import page_membership, render_page
from approvals.models import Proposal, ProposalStatus
from catalog.content import selectors, services
from catalog.content.formats import FORMATS
from catalog.models import Channel, ContentBrief

PAGE_SIZE = 50
# (URL name, label) of the section's tabs.
TABS = [("content", "Briefs"), ("content_calendar", "Calendar")]
MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def _context(membership: Membership, tab: str, title: str, **extra: Any) -> dict[str, Any]:
    return {
        "membership": membership,
        "section": "content",
        "title": f"{title} · Content",
        "tab": tab,
        "tabs": TABS,
        "can_operate": membership.has_role(Role.OPERATOR),
        **extra,
    }


class BriefForm(forms.Form):
    topic = forms.CharField(max_length=200)
    audience = forms.CharField(max_length=200, required=False, help_text="Who it is for.")
    channels = forms.MultipleChoiceField(
        choices=[(c.value, FORMATS[c.value].label) for c in Channel],
        widget=forms.CheckboxSelectMultiple,
        help_text="Social posts hold 280 characters; a newsletter's subject 80.",
    )
    languages = forms.CharField(initial="en", max_length=100, help_text="en, es, pt-BR")
    tone = forms.CharField(
        initial="brand", max_length=50, help_text="The memory namespace of the brand voice."
    )
    due_at = forms.DateTimeField(
        label="Publish at",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Blank: the next free day.",
    )
    research_urls = forms.CharField(
        label="Research URLs",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line; only these pages are read.",
    )

    def brief_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            **data,
            "languages": [code for code in re.split(r"[,\s]+", data["languages"]) if code],
            "research_urls": data["research_urls"].split(),
        }


# -- briefs ---------------------------------------------------------------------------------------


def _briefs_context(request: HttpRequest, membership: Membership, form: BriefForm) -> dict:
    briefs = selectors.brief_list(workspace_id=membership.workspace_id)
    page = Paginator(briefs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(brief, selectors.brief_outputs_of(brief)) for brief in page.object_list]
    return _context(membership, "content", "Briefs", page=page, rows=rows, form=form, query="")


@login_required
def content_page(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug)
    context = _briefs_context(request, membership, BriefForm())
    return render_page(request, "catalog/content.html", context)


@login_required
@require_POST
def brief_create(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug, Role.OPERATOR)
    form = BriefForm(request.POST)
    if form.is_valid():
        try:
            brief = services.brief_create(
                workspace=membership.workspace, user=request.user, **form.brief_fields()
            )
        except ValidationError as error:
            form.add_error(None, error)
        except (PermanentError, Conflict) as error:
            form.add_error(None, error_detail(error))
        else:
            messages.success(request, f"The content writer is on “{brief.topic}”.")
            return redirect("content_brief", slug=slug, brief_id=brief.pk)
    context = _briefs_context(request, membership, form)
    return render_page(request, "catalog/content.html", context)


def _brief(membership: Membership, brief_id: int) -> ContentBrief:
    brief = selectors.brief_get(workspace_id=membership.workspace_id, brief_id=brief_id)
    if brief is None:
        raise Http404("No such brief.")
    return brief


@login_required
def brief_page(request: HttpRequest, slug: str, brief_id: int) -> HttpResponse:
    membership = page_membership(request, slug)
    brief = _brief(membership, brief_id)
    pending = Proposal.objects.filter(
        workspace_id=membership.workspace_id,
        target=f"brief:{brief.pk}",
        status=ProposalStatus.PENDING,
    ).order_by("pk")
    context = _context(
        membership,
        "content",
        brief.topic,
        brief=brief,
        outputs=selectors.brief_outputs_of(brief),
        formats=FORMATS,
        pending=pending,
        ideas=selectors.brief_ideas(brief=brief),
    )
    return render_page(request, "catalog/content_brief.html", context)


@login_required
def brief_ideas(request: HttpRequest, slug: str, brief_id: int) -> HttpResponse:
    """GET: the angles so far (the partial polls itself while the writer works). POST
    (operators): ask for angles."""
    role = Role.OPERATOR if request.method == "POST" else Role.VIEWER
    membership = page_membership(request, slug, role)
    brief, error = _brief(membership, brief_id), ""
    if request.method == "POST":
        try:
            services.brief_ideate(brief=brief, user=request.user)
        except (PermanentError, Conflict) as problem:
            error = error_detail(problem)
        if not request.htmx:
            if error:
                messages.error(request, error)
            return redirect("content_brief", slug=slug, brief_id=brief.pk)
    context = _context(
        membership,
        "content",
        brief.topic,
        brief=brief,
        error=error,
        ideas=selectors.brief_ideas(brief=brief),
    )
    return render(request, "catalog/content_brief.html#ideas", context)


# -- the calendar -------------------------------------------------------------------------------


def _month(text: str | None) -> date:
    match = MONTH.match(text or "")
    if match and 1 <= int(match[2]) <= 12 and 1900 < int(match[1]) < 3000:
        return date(int(match[1]), int(match[2]), 1)
    return timezone.localdate().replace(day=1)


@login_required
def calendar_page(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug)
    month = _month(request.GET.get("month"))
    previous = (month.replace(day=1) - timedelta(days=1)).replace(day=1)
    following = (month + timedelta(days=32)).replace(day=1)
    context = _context(
        membership,
        "content_calendar",
        f"{month:%B %Y}",
        month=month,
        weeks=selectors.month_grid(workspace_id=membership.workspace_id, month=month),
        previous=f"{previous:%Y-%m}",
        following=f"{following:%Y-%m}",
        today=timezone.localdate(),
    )
    return render_page(request, "catalog/content_calendar.html", context)
