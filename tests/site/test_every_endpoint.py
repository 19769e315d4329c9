"""Every API operation, taken from the OpenAPI document (a new endpoint is covered without
touching this file, and fails here until the fixtures give its path a real object): without a
valid token it answers 401; another workspace's owner gets 404 for anything of this workspace
and lists with nothing of it, by token or by a session naming the workspace; a session's write
without the CSRF token is refused; a viewer's writes are refused and change no row. The same
requests with the owner's token do succeed, so every refusal here is about who asks."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.apps import apps
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.db.models import ForeignKey, Model
from django.test import Client
from django.utils import timezone

from agents.models import CostEntry, IntentExample, Run
from agents.services import agent_create, run_start
from agents.services import models as model_services
from aios_site.accounts.models import Role
from aios_site.accounts.services import token_create, token_revoke
from aios_site.api import api
from approvals.audit import Actor
from approvals.models import Proposal
from approvals.services import proposal_commit, rules_set, webhook_endpoint_save
from catalog.content.services import brief_create, brief_ideate
from catalog.models import WebhookEvent
from catalog.services import store_connect
from memory.models import MemoryImport
from memory.services import Source, memory_write
from tests.agents.conftest import drive
from tests.catalog.test_content_api import draft, post
from tests.catalog.test_views import alert, message, order, product
from tests.factories import MembershipFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

DOCUMENT = api.get_openapi_schema()
OWNER = Actor("user", "alice@shop.example")
# Every text of Alice's workspace that a list could show carries her name, so a list that
# shows the outsider anything of hers is caught by one search.
MARK = "alice"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def public(self) -> bool:
        return not self.spec.get("security")

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    @property
    def parameters(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    @property
    def body_types(self) -> set[str]:
        return set(self.spec.get("requestBody", {}).get("content", {}))

    @property
    def required_query(self) -> set[str]:
        return {
            p["name"]
            for p in self.spec.get("parameters", [])
            if p["in"] == "query" and p.get("required")
        }


OPERATIONS = [
    Operation(method.upper(), path, spec)
    for path, methods in DOCUMENT["paths"].items()
    for method, spec in methods.items()
]
GUARDED = [op for op in OPERATIONS if not op.public]
WRITES = [op for op in GUARDED if op.writes]
READS = [op for op in GUARDED if not op.writes]

# Answered without a token, each for a reason; the suite fails when the document and this
# list disagree. (/api/v1/openapi.json and /api/v1/docs, outside the document, are public too:
# they describe the API, not any workspace.)
PUBLIC = {
    "GET /api/v1/healthz": "a probe for load balancers: whether the services answer, no data",
    "POST /api/v1/webhooks/shopify": "Shopify signs each delivery (HMAC); the shop's secret is "
    "its credential, checked before anything is stored",
}
# About the caller, not about a workspace: a session naming another workspace still gets it.
UNSCOPED = {"GET /api/v1/me": "the caller's own account and the workspaces it reaches"}
# Reads that show a member something other than the workspace's own objects.
NOT_LISTS = {
    "GET /api/v1/pipelines": "the pipelines installed, the same for every workspace",
    "GET /api/v1/audit/verify": "whether the hash chain holds: counts, no content",
}
# What a viewer may do: their own credential, which reaches no more than they do.
VIEWER_MAY = {"POST /api/v1/workspaces/{slug}/tokens": "a viewer's own read-only token"}
# The owner's request succeeds but leaves the rows as they were.
OWNER_NO_CHANGE = {
    "POST /api/v1/intents/seed": "the workspace has examples already, so the shipped ones "
    "(thousands, embedded on the spot) are not added again",
}

# Path parameters an operation takes from another of the fixture's objects than the default.
OBJECT_FOR = {
    "POST /api/v1/runs/{run_id}/answer": {"run_id": "waiting_run_id"},
    "POST /api/v1/runs/{run_id}/cancel": {"run_id": "waiting_run_id"},
    "POST /api/v1/proposals/{proposal_id}/undo": {"proposal_id": "committed_proposal_id"},
    "POST /api/v1/memory/items/{item_id}/review": {"item_id": "waiting_item_id"},
}
# Required query parameters.
QUERIES = {"GET /api/v1/memory/search": {"q": "supplier"}}
# A valid body for every operation that takes one: what an owner would send.
BODIES = {
    "POST /api/v1/workspaces/{slug}/tokens": lambda v: {"name": "ci"},
    "POST /api/v1/agents": lambda v: {"slug": "writer", "name": "Writer", "pipeline": "demo.noop"},
    "PATCH /api/v1/agents/{slug}": lambda v: {"enabled": False},
    "POST /api/v1/runs": lambda v: {"agent": v["agents/{slug}"], "input": {}},
    "POST /api/v1/runs/{run_id}/answer": lambda v: {"answer": "yes"},
    "POST /api/v1/runs/{run_id}/fork": lambda v: {"from_seq": 1, "state_patch": {"x": 1}},
    "PUT /api/v1/providers/{name}": lambda v: {
        "name": v["providers/{name}"],
        "base_url": "https://llm.example/v1",
        "model_small": "small",
    },
    "PUT /api/v1/prices": lambda v: {
        "model": "qwen-plus",
        "input_per_million": "0.4",
        "output_per_million": "1.2",
    },
    "PUT /api/v1/model-policy": lambda v: {"policy": {"draft": {"tier": "template"}}},
    "POST /api/v1/intents/examples": lambda v: {
        "examples": [{"text": "Where is my parcel?", "intent": "track_order"}]
    },
    "POST /api/v1/memory": lambda v: {
        "namespace": "policies",
        "kind": "fact",
        "content": "Returns within 30 days.",
    },
    "POST /api/v1/memory/bulk": lambda v: {"action": "pin", "ids": [v["item_id"]]},
    "POST /api/v1/memory/import": lambda v: {
        "file": SimpleUploadedFile(
            "more.jsonl", b'{"namespace": "policies", "kind": "fact", "content": "No COD."}\n'
        )
    },
    "PATCH /api/v1/memory/{namespace}/{key}": lambda v: {"content": "Calls on Tuesdays."},
    "POST /api/v1/memory/{namespace}/{key}/pin": lambda v: {"pinned": True},
    "POST /api/v1/memory/items/{item_id}/review": lambda v: {"accept": True},
    "POST /api/v1/proposals/{proposal_id}/approve": lambda v: {"payload_hash": v["payload_hash"]},
    "POST /api/v1/proposals/{proposal_id}/reject": lambda v: {"reason": "not now"},
    "POST /api/v1/proposals/bulk": lambda v: {
        "action": "reject",
        "items": [{"id": v["proposal_id"], "payload_hash": v["payload_hash"]}],
        "reason": "not now",
    },
    "PUT /api/v1/policy-rules": lambda v: {
        "rules": [
            {"name": "Notes need a person", "effector": "core.note", "decision": "require_approval"}
        ]
    },
    "PUT /api/v1/webhook-endpoints/{name}": lambda v: {
        "url": "https://crm.example/hooks",
        "secret": "another-secret-of-some-length",
    },
    "POST /api/v1/stores": lambda v: {
        "shop_domain": "second-shop.myshopify.com",
        "access_token": "shpat_second",
        "webhook_secrets": ["a-webhook-secret-of-some-length"],
    },
    "POST /api/v1/messages": lambda v: {
        "store": v["store"],
        "customer_email": "carla@example.com",
        "body": "Where is my order?",
    },
    "POST /api/v1/briefs": lambda v: {"topic": "Summer linen", "channels": ["social"]},
}


@dataclass(frozen=True)
class World:
    values: dict  # what the paths and bodies name
    users: dict  # role -> user; "outsider" owns the other workspace
    bearer: dict  # role -> Authorization header
    other_workspace_id: int


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once for the module in a transaction rolled back at its end; every test runs in
    a savepoint of its own inside it (as Django's setUpTestData), so none sees another's
    changes."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield _build()
        transaction.set_rollback(True)


def _build() -> World:
    alice = WorkspaceFactory(name="Alice's Shop", slug=MARK)
    bob = WorkspaceFactory(name="Bob's Shop", slug="bob")
    users = {
        "owner": _member(alice, Role.OWNER, "alice@shop.example"),
        "viewer": _member(alice, Role.VIEWER, "victor@shop.example"),
        "outsider": _member(bob, Role.OWNER, "bob@shop.example"),
    }
    # Seeding Bob's intents, which an outsider may do, is then quick: he has some already.
    _intent_example(bob, "refund")
    values = _alices_shop(alice, users["owner"])
    bearer = {role: _bearer(user) for role, user in users.items()}
    return World(values=values, users=users, bearer=bearer, other_workspace_id=bob.pk)


def _member(workspace, role: str, email: str):
    return MembershipFactory(workspace=workspace, role=role, user__username=email).user


def _intent_example(workspace, intent: str) -> None:
    IntentExample.objects.create(
        workspace=workspace,
        intent=intent,
        text="Can I get my money back?",
        embedding=[0.0] * 383 + [1.0],
        source="test",
    )


def _alices_shop(workspace, owner) -> dict:
    """Alice's workspace as a shop uses it: one or more of everything the API is about, each
    made by the services that make it in use; returns what the paths and bodies name."""
    echo = agent_create(workspace=workspace, slug=f"{MARK}-echo", name="E", pipeline="demo.echo")
    noop = agent_create(workspace=workspace, slug=f"{MARK}-noop", name="N", pipeline="demo.noop")
    proposer = agent_create(
        workspace=workspace,
        slug=f"{MARK}-proposer",
        name="Proposer",
        pipeline="demo.propose",
        allowed_effectors=["core.note", "core.webhook"],
    )
    waiting = drive(run_start(agent=echo, input={"customer": MARK})[0])
    finished = drive(run_start(agent=noop, input={"customer": MARK})[0])
    assert (waiting.status, finished.status) == ("waiting", "succeeded")
    CostEntry.objects.create(workspace=workspace, agent=echo, run=waiting, model="qwen-plus")

    webhook_endpoint_save(
        workspace=workspace,
        name="crm",
        url="https://crm.alice.example/hooks",
        secret="a-webhook-secret-of-some-length",
        actor=OWNER,
    )
    pending = _propose(proposer, "core.webhook", {"endpoint": "crm", "body": {"tag": MARK}})
    committed = _propose(proposer, "core.note", {"content": f"Ask {MARK} about linen."})
    proposal_commit(proposal_id=committed.pk)
    assert (pending.status, Proposal.objects.get(pk=committed.pk).status) == (
        "pending",
        "committed",
    )
    rules_set(
        workspace=workspace,
        rules=[{"name": f"All of {MARK}'s waits", "effector": "*", "decision": "require_approval"}],
        actor=OWNER,
    )

    item = memory_write(
        workspace=workspace,
        namespace="notes",
        key="supplier",
        kind="fact",
        content=f"{MARK}'s supplier calls on Mondays.",
        source=Source.human(owner),
    )
    waiting_item = memory_write(
        workspace=workspace,
        namespace="notes",
        key="supplier",
        kind="fact",
        content=f"{MARK}'s supplier calls on Fridays.",
        source=Source.of_run(finished, 1),
    )
    assert waiting_item.outcome == "needs_review"
    memory_import = MemoryImport.objects.create(
        workspace=workspace, filename=f"{MARK}.jsonl", rows=[], total=0
    )

    store = store_connect(
        workspace=workspace,
        shop_domain=f"{MARK}.myshopify.com",
        access_token="shpat_alice",
        webhook_secrets=["a-webhook-secret-of-some-length"],
        actor=OWNER,
    )
    shirt = product(store, 7, f"Linen shirt by {MARK}")
    small = shirt.variants.first()
    order(store, small, 1, email=f"{MARK}@shop.example")
    message(store, body=f"Hello {MARK}, where is my order?")
    alert(small)
    WebhookEvent.objects.create(
        connection=store, workspace=workspace, topic="products/update", webhook_id="w-1", body={}
    )

    brief = brief_create(
        workspace=workspace, user=owner, topic=f"Linen by {MARK}", channels=["social"]
    )
    ideation, _ = brief_ideate(brief=brief, user=owner)
    Run.objects.filter(pk=ideation.pk).update(
        status="succeeded", outcome={"ideas": [f"Linen for {MARK}'s customers"]}
    )
    post(brief, draft(brief), timezone.now() + timedelta(hours=1))

    provider = model_services.provider_save(
        workspace=workspace, name=f"{MARK}-llm", base_url="https://llm.example/v1", actor=OWNER
    )
    model_services.price_set(
        workspace=workspace,
        model=f"{MARK}-model",
        input_per_million=1,
        output_per_million=2,
        actor=OWNER,
    )
    model_services.workspace_policy_set(
        workspace=workspace,
        policy={"draft": {"tier": "remote", "provider": provider.name}},
        actor=OWNER,
    )
    _intent_example(workspace, f"{MARK}_refund")

    spare, _ = token_create(membership=owner.memberships.get(), name=f"{MARK}'s sync")
    return {
        "workspaces/{slug}": workspace.slug,
        "agents/{slug}": echo.slug,
        "providers/{name}": provider.name,
        "webhook-endpoints/{name}": "crm",
        "token_id": spare.pk,
        "run_id": finished.pk,
        "waiting_run_id": waiting.pk,
        "proposal_id": pending.pk,
        "payload_hash": pending.payload_hash,
        "committed_proposal_id": committed.pk,
        "namespace": item.namespace,
        "key": item.key,
        "item_id": item.pk,
        "waiting_item_id": waiting_item.pk,
        "import_id": memory_import.pk,
        "product_id": shirt.external_id,
        "brief_id": brief.pk,
        "store": store.shop_domain,
    }


def _propose(agent, effector: str, payload: dict) -> Proposal:
    run = drive(run_start(agent=agent, input={"effector": effector, "payload": payload})[0])
    return Proposal.objects.get(run=run)


@pytest.fixture
def client() -> Client:
    """As browsers and scripts send requests: with CSRF checked."""
    return Client(enforce_csrf_checks=True)


def _bearer(user) -> dict:
    _, raw = token_create(membership=user.memberships.get(), name="t")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _url(operation: Operation, values: dict) -> str:
    chosen = OBJECT_FOR.get(str(operation), {})

    def value(match: re.Match) -> str:
        name = match.group(1)
        before = operation.path[: match.start()].rstrip("/").rsplit("/", 1)[-1]
        for key in (chosen.get(name), f"{before}/{{{name}}}", name):
            if key in values:
                return str(values[key])
        pytest.fail(f"{operation}: give {{{name}}} a real object in _alices_shop()")

    return re.sub(r"{(\w+)}", value, operation.path)


def _send(client: Client, operation: Operation, values: dict, auth: dict, query=None):
    url = _url(operation, values)
    query = {**QUERIES.get(str(operation), {}), **(query or {})}
    missing = operation.required_query - set(query)
    assert not missing, f"{operation}: add {missing} to QUERIES"
    if not operation.writes:
        return client.get(url, query, **auth)
    if query:
        url += "?" + urlencode(query)
    if not operation.body_types:
        return client.generic(operation.method, url, **auth)
    assert str(operation) in BODIES, f"{operation}: add a valid body to BODIES"
    body = BODIES[str(operation)](values)
    if "multipart/form-data" in operation.body_types:
        return client.post(url, body, **auth)
    return client.generic(
        operation.method, url, json.dumps(body), content_type="application/json", **auth
    )


# -- the rows a request could change -----------------------------------------------------------

PROJECT_APPS = ("accounts", "agents", "memory", "approvals", "catalog")
# Using a token records when; that is the caller's own bookkeeping, not a change.
UNTRACKED = {"last_used_at"}


def _workspace_path(model: type[Model]) -> str | None:
    """The lookup from a row to its workspace ("" for a workspace), by foreign keys."""
    if model._meta.label == "accounts.Workspace":
        return ""
    keys = {f.name: f for f in model._meta.fields if isinstance(f, ForeignKey)}
    if "workspace" in keys:
        return "workspace"
    for name, field in keys.items():
        related = field.related_model
        if related is not model and related._meta.app_label in PROJECT_APPS:
            path = _workspace_path(related)
            if path is not None:
                return f"{name}__{path}" if path else name
    return None


def _rows(*, besides: int | None = None) -> dict[str, str]:
    """A digest of every row of each of the project's tables, but those of workspace
    `besides`, in one query."""
    parts, params = [], []
    for app in PROJECT_APPS:
        for model in apps.get_app_config(app).get_models():
            rows = model.objects.order_by()
            if besides is not None:
                path = _workspace_path(model)
                assert path is not None, f"{model._meta.label}: no foreign key leads to a workspace"
                rows = rows.exclude(**{path or "pk": besides})
            fields = [f.attname for f in model._meta.concrete_fields if f.name not in UNTRACKED]
            sql, sql_params = rows.values(*fields).query.sql_with_params()
            pk = model._meta.pk.attname
            parts.append(  # the ORM's own SQL, with its parameters kept apart
                f"SELECT %s, md5(coalesce(string_agg(r::text, '|' ORDER BY r.{pk}), ''))"  # noqa: S608
                f" FROM ({sql}) r"
            )
            params += [model._meta.label, *sql_params]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        return dict(cursor.fetchall())


def _changed(before: dict, after: dict) -> list[str]:
    return [label for label in before if before[label] != after[label]]


# -- the document and its exceptions -----------------------------------------------------------


def test_the_suite_walks_the_document_the_api_serves(client):
    served = client.get("/api/v1/openapi.json")

    assert served.status_code == 200  # public: it describes the API, not a workspace
    assert _operations(served.json()) == _operations(DOCUMENT)
    assert client.get("/api/v1/docs").status_code == 200
    assert len(OPERATIONS) > 70
    assert "DELETE /api/v1/memory/{namespace}/{key}" in map(str, WRITES)


def _operations(document: dict) -> set[tuple[str, str]]:
    return {(method, path) for path, methods in document["paths"].items() for method in methods}


def test_only_the_listed_operations_answer_without_a_token():
    assert {str(op) for op in OPERATIONS if op.public} == set(PUBLIC)


def test_every_exception_and_example_names_an_operation_of_the_document():
    known = {str(op) for op in OPERATIONS}
    for table in (UNSCOPED, NOT_LISTS, VIEWER_MAY, OWNER_NO_CHANGE, OBJECT_FOR, QUERIES, BODIES):
        assert set(table) <= known, set(table) - known
    assert set(BODIES) == {str(op) for op in OPERATIONS if op.body_types} - set(PUBLIC)


def test_the_public_operations_tell_nothing_about_a_workspace(client, world):
    health = client.get("/api/v1/healthz")
    unsigned = client.post(
        "/api/v1/webhooks/shopify",
        "{}",
        content_type="application/json",
        HTTP_X_SHOPIFY_SHOP_DOMAIN=world.values["store"],
        HTTP_X_SHOPIFY_TOPIC="products/update",
    )

    assert MARK not in health.content.decode().lower()
    assert unsigned.status_code == 401 and MARK not in unsigned.content.decode().lower()
    assert WebhookEvent.objects.count() == 1  # the one Alice's shop had


# -- no token -----------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", GUARDED, ids=str)
def test_without_a_valid_token_every_operation_answers_401(operation, client, world):
    revoked, raw = token_create(membership=world.users["owner"].memberships.get(), name="old")
    token_revoke(token=revoked)
    before = _rows()

    for bearer in ("", f"Bearer {raw}", "Bearer aios_made_up"):
        auth = {"HTTP_AUTHORIZATION": bearer} if bearer else {}
        answer = _send(client, operation, world.values, auth)
        assert answer.status_code == 401, (str(operation), bearer, answer.status_code)
        assert answer.json() == {"detail": "Unauthorized"}
    assert not _changed(before, _rows())


# -- an outsider ----------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", GUARDED, ids=str)
def test_an_outsiders_token_finds_nothing_of_the_workspace(operation, client, world):
    before = _rows(besides=world.other_workspace_id)

    answer = _send(client, operation, world.values, world.bearer["outsider"])

    # A path names one of Alice's objects: not found. A PUT names what it creates, and
    # creates it in the caller's own workspace. Without a path, the token's own workspace is
    # the one read or written.
    if operation.parameters and operation.method != "PUT":
        assert answer.status_code == 404, (str(operation), answer.status_code)
        assert "detail" in answer.json()
    elif not operation.writes:
        assert answer.status_code == 200, (str(operation), answer.status_code)
        assert MARK not in answer.content.decode().lower(), str(operation)
    assert answer.status_code < 500, (str(operation), answer.status_code)
    assert not _changed(before, _rows(besides=world.other_workspace_id)), str(operation)


@pytest.mark.parametrize("operation", GUARDED, ids=str)
def test_an_outsiders_session_naming_the_workspace_gets_404(operation, client, world):
    client.force_login(world.users["outsider"])
    client.get("/login/")  # the page gives the browser its CSRF token, which it sends
    csrf = {"HTTP_X_CSRFTOKEN": client.cookies[settings.CSRF_COOKIE_NAME].value}
    before = _rows(besides=world.other_workspace_id)

    answer = _send(client, operation, world.values, csrf, query={"workspace": MARK})

    if str(operation) in UNSCOPED:
        assert answer.status_code == 200 and MARK not in answer.content.decode().lower()
    else:
        assert answer.status_code == 404, (str(operation), answer.status_code)
    assert not _changed(before, _rows(besides=world.other_workspace_id)), str(operation)


# -- a browser session --------------------------------------------------------------------------


@pytest.mark.parametrize("operation", WRITES, ids=str)
def test_a_sessions_write_without_the_csrf_token_is_refused(operation, client, world):
    client.force_login(world.users["owner"])
    before = _rows()

    answer = _send(client, operation, world.values, {}, query={"workspace": MARK})

    # With the token (as the outsider's session above sends it) the same request gets past.
    assert answer.status_code == 403, (str(operation), answer.status_code)
    assert answer.json() == {"detail": "CSRF check Failed"}
    assert not _changed(before, _rows()), str(operation)


# -- a viewer, and the owner as the control --------------------------------------------------------


@pytest.mark.parametrize("operation", READS, ids=str)
def test_a_viewer_reads_every_object_of_the_workspace(operation, client, world):
    answer = _send(client, operation, world.values, world.bearer["viewer"])

    assert answer.status_code == 200, (str(operation), answer.status_code, answer.content[:300])
    # A list shows the workspace's own things (which the outsider's search above relies on).
    if not operation.parameters and str(operation) not in NOT_LISTS:
        assert MARK in answer.content.decode().lower(), str(operation)


@pytest.mark.parametrize("operation", WRITES, ids=str)
def test_a_viewers_token_changes_nothing(operation, client, world):
    before = _rows()

    answer = _send(client, operation, world.values, world.bearer["viewer"])

    changed = _changed(before, _rows())
    if str(operation) in VIEWER_MAY:
        assert answer.status_code == 201 and changed == ["accounts.ApiToken"]
        assert answer.json()["owner"] == world.users["viewer"].email
        return
    assert answer.status_code in {403, 404}, (str(operation), answer.status_code)
    assert "detail" in answer.json()
    assert not changed, (str(operation), changed)


@pytest.mark.parametrize("operation", WRITES, ids=str)
def test_the_owners_token_makes_each_change_the_others_could_not(operation, client, world):
    before = _rows()

    answer = _send(client, operation, world.values, world.bearer["owner"])

    assert 200 <= answer.status_code < 300, (str(operation), answer.status_code, answer.content)
    if str(operation) not in OWNER_NO_CHANGE:
        assert _changed(before, _rows()), str(operation)
