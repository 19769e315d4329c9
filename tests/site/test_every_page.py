"""Every workspace page, taken from the URL conf (a new page is covered without touching this
file): a member of another workspace gets 404 on each, for GET and POST alike, and a viewer
can change nothing through any of them — no POST succeeds and the audit log, which records
every change, stays as it was."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from agents.models import EvalRun
from agents.services import run_start
from aios_site.accounts.models import ApiToken
from aios_site.accounts.services import token_create
from approvals.models import AuditEntry, Proposal
from catalog.models import ContentBrief, Product, StoreConnection
from memory.models import MemoryImport
from memory.services import Source, memory_write
from tests.helpers import pending_proposal

pytestmark = pytest.mark.django_db

PREFIX = "w/<slug:slug>/"


def _routes(patterns=None, prefix: str = "") -> list[str]:
    found = []
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += _routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and route.startswith(PREFIX):
            found.append(route)
    return sorted(set(found))


ROUTES = _routes()


@pytest.fixture
def objects(workspace, owner, make_agent):
    """One of each thing a workspace page can be about, in Alice's workspace."""
    agent = make_agent("demo.noop", slug="noop")
    run, _ = run_start(agent=agent, input={})
    proposal = pending_proposal(agent, run=run, risk="low")
    store = StoreConnection.objects.create(
        workspace=workspace, shop_domain="alice.myshopify.com", access_token_encrypted="x"
    )
    product = Product.objects.create(
        workspace=workspace, connection=store, external_id=7, title="Shirt"
    )
    item = memory_write(
        workspace=workspace,
        namespace="notes",
        key="supplier",
        kind="fact",
        content="Call on Mondays.",
        source=Source("test"),
    )
    memory_import = MemoryImport.objects.create(
        workspace=workspace, filename="x.jsonl", rows=[], total=0
    )
    brief = ContentBrief.objects.create(
        workspace=workspace, topic="Linen", channels=["social"], languages=["en"]
    )
    token, _ = token_create(membership=owner.memberships.get(), name="t")
    evaluated = EvalRun.objects.create(
        workspace=workspace, dataset="support-messages", label="the local tier alone"
    )
    return {
        "uidb64": "MQ",  # an invitation link that is not valid
        "token": "x-y",
        "slug": workspace.slug,
        "agent_slug": agent.slug,
        "run_id": run.pk,
        "proposal_id": proposal.pk,
        "product_id": product.external_id,
        "store_id": store.pk,
        "item_id": item.pk,
        "import_id": memory_import.pk,
        "namespace": item.namespace,
        "key": item.key,
        "brief_id": brief.pk,
        "token_id": token.pk,
        "eval_id": evaluated.pk,
        "section": "board",
        "action": "approve",
    }


def _url(route: str, values: dict) -> str:
    def value(match: re.Match) -> str:
        name = match.group(2)
        assert name in values, f"{route}: add a value for <{name}> to the `objects` fixture"
        return str(values[name])

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", value, route)


@pytest.mark.parametrize("route", ROUTES)
def test_an_outsider_gets_404_on_every_workspace_page(route, client, outsider, objects):
    client.force_login(outsider)
    url = _url(route, objects)

    answers = {client.get(url).status_code, client.post(url, {"reason": "x"}).status_code}

    # 405 only says which method the page takes (routes are public knowledge): whatever the
    # page takes, the workspace behind it is not found.
    assert answers <= {404, 405} and 404 in answers, (url, answers)


@pytest.mark.parametrize("route", ROUTES)
def test_a_viewer_changes_nothing_through_any_workspace_page(route, client, viewer, objects):
    client.force_login(viewer)
    url = _url(route, objects)
    audited = AuditEntry.objects.count()

    answer = client.post(url, {"reason": "x", "content": "x", "daily_budget": "1"})

    # Refused, or (a read-only page that ignores the method) what a GET gives: never the
    # redirect or the 2xx of a change made; and every change is audited.
    if answer.status_code == 302:  # a page that always redirects, e.g. a key to its item
        assert answer["Location"] == client.get(url)["Location"], url
    else:
        assert answer.status_code in {200, 403, 404, 405}, (url, answer.status_code)
    assert AuditEntry.objects.count() == audited, url
    assert not Proposal.objects.exclude(status="pending").exists()
    assert not ApiToken.objects.filter(revoked_at__isnull=False).exists()


def test_the_suite_covers_the_pages_it_should():
    assert len(ROUTES) > 30
    assert "w/<slug:slug>/board/<int:proposal_id>/<str:action>/" in ROUTES
    assert "w/<slug:slug>/content/briefs/<int:brief_id>/" in ROUTES
