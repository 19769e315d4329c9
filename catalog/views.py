"""The Catalog section: products and their descriptions, inventory, customer messages, and
the store connection. Thin: reads from catalog.selectors, writes through the services."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from agents.models import Agent, Run
from agents.pipelines import PermanentError
from agents.services import Conflict
from aios_site.accounts.models import Membership, Role
from aios_site.errors import error_detail
from aios_site.humanize import currency_choices
from aios_site.pages import page_membership, query_without_page, render_page
from approvals.audit import Actor
from catalog import selectors, services
from catalog.agents import WRITER, describe_on_demand
from catalog.models import Product, StoreConnection, WebhookEvent
from catalog.webhooks import test_delivery_receive

PAGE_SIZE = 50
EVENTS_SHOWN = 20
RESOLVED_ALERTS_SHOWN = 20
# (URL name, label) of the section's tabs.
TABS = [
    ("catalog", "Products"),
    ("catalog_inventory", "Inventory"),
    ("catalog_messages", "Messages"),
    ("catalog_store", "Store"),
]


def _context(membership: Membership, tab: str, **extra: Any) -> dict[str, Any]:
    return {
        "membership": membership,
        "section": "catalog",
        "title": f"{dict(TABS)[tab]} · Catalog",
        "tab": tab,
        "tabs": TABS,
        "can_operate": membership.has_role(Role.OPERATOR),
        "is_owner": membership.has_role(Role.OWNER),
        **extra,
    }


# -- products -----------------------------------------------------------------------------


def _products_context(request: HttpRequest, membership: Membership) -> dict[str, Any]:
    workspace_id = membership.workspace_id
    products = selectors.product_list(workspace_id=workspace_id)
    page = Paginator(products, PAGE_SIZE).get_page(request.GET.get("page"))
    return _context(
        membership,
        "catalog",
        page=page,
        rows=selectors.product_rows(workspace_id=workspace_id, products=page.object_list),
        query=query_without_page(request),
        writer=Agent.objects.filter(workspace_id=workspace_id, slug=WRITER).first(),
        has_store=StoreConnection.objects.filter(workspace_id=workspace_id).exists(),
    )


@login_required
def product_page(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug)
    return render_page(request, "catalog/products.html", _products_context(request, membership))


@login_required
@require_POST
def product_describe(request: HttpRequest, slug: str, product_id: int) -> HttpResponse:
    """Starts the catalog writer on one product now, whatever its description."""
    membership = page_membership(request, slug, Role.OPERATOR)
    product = _product(membership, product_id)
    try:
        run, started = describe_on_demand(product=product, user=membership.user)
    except (Conflict, PermanentError) as problem:
        run, error, note = None, error_detail(problem), ""
    else:
        error, note = "", _describe_note(product, run, started)
    if not request.htmx:
        if error:
            messages.error(request, f"Not started: {error}")
        else:
            messages.success(request, note)
        return redirect(reverse("catalog", args=[slug]) + f"#product-{product.pk}")
    [row] = selectors.product_rows(workspace_id=membership.workspace_id, products=[product])
    context = _context(membership, "catalog", row=row, error=error, note=note, run=run)
    return render(request, "catalog/products.html#product-row", context)


def _product(membership: Membership, product_id: int) -> Product:
    product = (
        selectors.product_list(workspace_id=membership.workspace_id).filter(pk=product_id).first()
    )
    if product is None:
        raise Http404("No such product.")
    return product


def _describe_note(product: Product, run: Run, started: bool) -> str:
    if started:
        return f"The catalog writer is drafting {product.title} (run #{run.pk})."
    return f"The catalog writer is already on {product.title} (run #{run.pk})."


# -- inventory --------------------------------------------------------------------------------


@login_required
def inventory_page(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug)
    workspace_id = membership.workspace_id
    rows = selectors.stock_rows(workspace_id=workspace_id)
    context = _context(
        membership,
        "catalog_inventory",
        page=Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page")),
        query=query_without_page(request),
        open_alerts=selectors.alert_list(workspace_id=workspace_id, status="open"),
        resolved_alerts=selectors.alert_list(workspace_id=workspace_id, status="resolved")[
            :RESOLVED_ALERTS_SHOWN
        ],
    )
    return render_page(request, "catalog/inventory.html", context)


# -- messages ---------------------------------------------------------------------------------


@login_required
def message_page(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug)
    workspace_id = membership.workspace_id
    page = Paginator(selectors.message_list(workspace_id=workspace_id), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = _context(
        membership,
        "catalog_messages",
        page=page,
        rows=selectors.message_rows(workspace_id=workspace_id, messages=page.object_list),
        query=query_without_page(request),
    )
    return render_page(request, "catalog/messages.html", context)


# -- the store --------------------------------------------------------------------------------

DOMAIN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,250}[a-z0-9]$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$", re.I)


class StoreConnectForm(forms.Form):
    shop_domain = forms.CharField(
        max_length=255, help_text="As Shopify names it: your-shop.myshopify.com"
    )
    api_base_url = forms.URLField(
        label="API base URL",
        required=False,
        assume_scheme="https",
        max_length=500,
        help_text="Blank: https:// and the shop domain.",
    )
    access_token = forms.CharField(max_length=500, widget=forms.PasswordInput)
    webhook_secret = forms.CharField(max_length=500, widget=forms.PasswordInput)
    previous_webhook_secret = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.PasswordInput,
        help_text="Only while rotating: deliveries signed with either verify.",
    )
    outbound_url = forms.URLField(
        label="Outbound URL",
        required=False,
        assume_scheme="https",
        max_length=500,
        help_text="Where approved replies go (blank: by email).",
    )
    languages = forms.CharField(
        initial="en", max_length=200, help_text="The shop's languages, primary first: en, es"
    )
    currency = forms.ChoiceField(
        initial="USD",
        required=False,
        choices=currency_choices,
        help_text="The currency of the shop's prices.",
    )

    def clean_currency(self) -> str:
        return self.cleaned_data["currency"] or "USD"

    def clean_shop_domain(self) -> str:
        domain = self.cleaned_data["shop_domain"].strip().lower()
        if not DOMAIN.match(domain):
            raise ValidationError("Not a shop domain: letters, digits, dots and dashes.")
        if StoreConnection.objects.filter(shop_domain=domain).exists():
            raise ValidationError(f"{domain} is connected already.")
        return domain

    def clean_languages(self) -> list[str]:
        codes = [code.strip() for code in re.split(r"[,\s]+", self.cleaned_data["languages"])]
        codes = list(dict.fromkeys(code for code in codes if code))
        bad = [code for code in codes if not LANGUAGE.match(code)]
        if bad or not codes:
            raise ValidationError(f"Language codes such as en, es, pt-BR (not {', '.join(bad)}).")
        return codes


def _store_context(
    request: HttpRequest,
    membership: Membership,
    *,
    form: StoreConnectForm | None = None,
    **extra: Any,
) -> dict[str, Any]:
    workspace_id = membership.workspace_id
    events = WebhookEvent.objects.filter(workspace_id=workspace_id).select_related("connection")
    return _context(
        membership,
        "catalog_store",
        stores=list(StoreConnection.objects.filter(workspace_id=workspace_id).order_by("pk")),
        events=events.defer("body")[:EVENTS_SHOWN],
        webhook_url=request.build_absolute_uri("/api/v1/webhooks/shopify"),
        form=form or StoreConnectForm(),
        **extra,
    )


@login_required
def store_page(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug)
    return render_page(request, "catalog/store.html", _store_context(request, membership))


@login_required
@require_POST
def store_connect(request: HttpRequest, slug: str) -> HttpResponse:
    membership = page_membership(request, slug, Role.OWNER)
    form = StoreConnectForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        secrets = [data["webhook_secret"], data["previous_webhook_secret"]]
        try:
            store = services.store_connect(
                workspace=membership.workspace,
                shop_domain=data["shop_domain"],
                access_token=data["access_token"],
                webhook_secrets=[secret for secret in secrets if secret],
                api_base_url=data["api_base_url"],
                outbound_url=data["outbound_url"],
                languages=data["languages"],
                currency=data["currency"],
                actor=Actor.of_user(request.user),
            )
        except ValidationError as error:  # what the model itself refuses
            form.add_error(None, error_detail(error))
        else:
            messages.success(request, f"Connected {store.shop_domain}.")
            return redirect("catalog_store", slug=slug)
    context = _store_context(request, membership, form=form)
    return render_page(request, "catalog/store.html", context)


@login_required
@require_POST
def store_test_webhook(request: HttpRequest, slug: str, store_id: int) -> HttpResponse:
    """Signs a `products/update` delivery with the store's secret and hands it to the
    webhook endpoint's own code: the receipt shows whether verification works."""
    membership = page_membership(request, slug, Role.OPERATOR)
    stores = StoreConnection.objects.filter(workspace_id=membership.workspace_id)
    store = stores.filter(pk=store_id).first()
    if store is None:
        raise Http404("No such store.")
    receipt = test_delivery_receive(store)
    context = _store_context(request, membership, receipt=receipt, tested=store)
    return render_page(request, "catalog/store.html", context)
