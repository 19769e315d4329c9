"""The API under generated requests. Every operation of /api/v1/openapi.json is called, with
valid and invalid input, by the owner of a workspace that has agents, runs, proposals,
memory, a store with products, orders, messages and alerts, briefs, a provider and an
endpoint, and about half the time with the path of one of its real objects. Each answer is
no server error and is what the schema documents: its status code, content type and body.
Then runs are created, read, traced, answered, forked and cancelled by following the
links from one answer to the next.

Left out, each for a reason:
- `POST /webhooks/shopify` is authenticated by an HMAC of the body, which no generated
  request has, so every call would be the same 401; tests/catalog/test_webhook_abuse.py
  fuzzes it with signed deliveries instead.
- `POST /intents/seed` takes no input, so there is nothing to generate; each call embeds
  the shipped examples of 27 intents on the local model (tens of seconds).
  tests/llm/test_workspace_intents.py covers it.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from agents.models import Run
from agents.services import run_start
from aios_site.accounts.services import token_create
from aios_site.wsgi import application
from approvals.audit import Actor
from approvals.models import Proposal
from approvals.services import webhook_endpoint_save
from catalog.models import Product, WebhookEvent
from catalog.services import message_receive, store_connect, webhook_process_many
from catalog.webhooks import sign
from memory.models import MemoryImport, MemoryItem
from memory.services import Source, memory_write
from tests.agents.conftest import drive
from tests.catalog.conftest import NEW_SECRET, SHOP
from tests.catalog.test_views import alert
from tests.catalog.test_webhooks import HOOKS

pytestmark = pytest.mark.django_db

OWNER = Actor("user", "alice@shop.example")
SIGNED_ONLY = "/api/v1/webhooks/shopify"
SEED = "/api/v1/intents/seed"


@pytest.fixture
def in_this_transaction():
    """Requests served by the WSGI application in this thread, inside the test's
    transaction: as Django's test client does, they must not close the connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _deliver(client, topic: str, name: str) -> None:
    body = (HOOKS / name).read_bytes()
    response = client.post(
        SIGNED_ONLY,
        body,
        content_type="application/json",
        HTTP_X_SHOPIFY_TOPIC=topic,
        HTTP_X_SHOPIFY_HMAC_SHA256=sign(body, NEW_SECRET),
        HTTP_X_SHOPIFY_SHOP_DOMAIN=SHOP,
        HTTP_X_SHOPIFY_WEBHOOK_ID=f"{topic}-{name}",
    )
    assert response.status_code == 200


def _shop(client, workspace) -> Product:
    """A connected store that sent a product and an order; a stock alert, a message."""
    store_connect(
        workspace=workspace,
        shop_domain=SHOP,
        access_token="shpat_x",
        webhook_secrets=[NEW_SECRET],
        actor=OWNER,
    )
    _deliver(client, "products/create", "products-create.json")
    _deliver(client, "orders/create", "orders-create.json")
    webhook_process_many(event_ids=list(WebhookEvent.objects.values_list("pk", flat=True)))
    product = Product.objects.get()
    alert(product.variants.first())
    message_receive(workspace=workspace, store=SHOP, external_id="m-1", body="Where is it?")
    return product


def _runs(make_agent, workspace) -> tuple[Run, Run, Proposal]:
    """A run waiting for an answer, a finished one, and a proposal waiting for a person."""
    crm = {"name": "crm", "url": "https://crm.example/hook", "secret": "s" * 20}
    webhook_endpoint_save(workspace=workspace, actor=OWNER, **crm)
    proposer = make_agent(
        "demo.propose", slug="proposer", allowed_effectors=["core.note", "core.webhook"]
    )
    waiting = drive(run_start(agent=make_agent("demo.echo", slug="echo"), input={"a": 1})[0])
    finished = drive(run_start(agent=make_agent("demo.noop", slug="noop"), input={})[0])
    webhook = {"endpoint": "crm", "body": {"tag": "vip"}}
    proposing = drive(
        run_start(agent=proposer, input={"effector": "core.webhook", "payload": webhook})[0]
    )
    assert (waiting.status, finished.status) == ("waiting", "succeeded")
    return waiting, finished, Proposal.objects.get(run=proposing)


def _memory(workspace, owner) -> MemoryItem:
    """A fact with two versions, a note, and a third version waiting for review."""

    human = Source.human(owner)

    def remember(namespace, key, kind, content, source=None):
        return memory_write(
            workspace=workspace,
            namespace=namespace,
            key=key,
            kind=kind,
            content=content,
            source=source or human,
        )

    remember("policies", "returns", "fact", "Returns within 30 days.")
    remember("policies", "returns", "fact", "Returns within 60 days.")
    remember("notes", "today", "note", "Restock the mugs.")
    review = remember(
        "policies", "returns", "fact", "Returns within 90 days.", Source("import", ref="x")
    )
    assert review.status == "needs_review"
    return review


def _through_the_api(client, token: str) -> int:
    """An import, a provider and a brief, as a client makes them; the brief's id."""
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    row = {"namespace": "brand", "key": "voice", "kind": "fact", "content": "Warm."}
    rows = SimpleUploadedFile("rows.jsonl", json.dumps(row).encode())
    imported = client.post("/api/v1/memory/import", {"file": rows}, **auth)
    provider = {"name": "qwen", "base_url": "https://llm.example/v1", "api_key": "k"}
    put = client.put(
        "/api/v1/providers/qwen", json.dumps(provider), content_type="application/json", **auth
    )
    brief = {"topic": "Linen shirts", "channels": ["blog"], "languages": ["en"]}
    posted = client.post(
        "/api/v1/briefs", json.dumps(brief), content_type="application/json", **auth
    )
    assert (imported.status_code, put.status_code, posted.status_code) == (202, 200, 201)
    return posted.json()["id"]


@pytest.fixture
def shop_data(client, owner, make_agent) -> dict:
    """The owner's token for a workspace in use, and for each path of the API the
    parameters that name its real objects."""
    membership = owner.memberships.get()
    workspace = membership.workspace
    token, raw = token_create(membership=membership, name="fuzz")
    product = _shop(client, workspace)
    waiting, finished, proposal = _runs(make_agent, workspace)
    review = _memory(workspace, owner)
    brief_id = _through_the_api(client, raw)
    runs = [{"run_id": pk} for pk in (waiting.pk, finished.pk, proposal.run_id)]
    agents = [{"slug": slug} for slug in ("echo", "noop", "proposer", "catalog-writer")]
    workspace_paths = ["", "/members", "/tokens"]
    known = {
        **{f"/api/v1/workspaces/{{slug}}{p}": [{"slug": workspace.slug}] for p in workspace_paths},
        "/api/v1/workspaces/{slug}/tokens/{token_id}": [
            {"slug": workspace.slug, "token_id": token.pk}
        ],
        "/api/v1/agents/{slug}": agents,
        "/api/v1/runs/{run_id}": runs,
        # What can be answered, replayed and forked.
        "/api/v1/runs/{run_id}/answer": [{"run_id": waiting.pk}],
        "/api/v1/runs/{run_id}/replay": [{"run_id": finished.pk}],
        "/api/v1/runs/{run_id}/fork": [{"run_id": finished.pk}],
        "/api/v1/providers/{name}": [{"name": "qwen"}],
        "/api/v1/webhook-endpoints/{name}": [{"name": "crm"}],
        "/api/v1/memory/imports/{import_id}": [
            {"import_id": pk} for pk in MemoryImport.objects.values_list("pk", flat=True)
        ],
        "/api/v1/memory/{namespace}/{key}": [
            {"namespace": "policies", "key": "returns"},
            {"namespace": "notes", "key": "today"},
        ],
        "/api/v1/memory/items/{item_id}": [{"item_id": review.pk}],
        "/api/v1/proposals/{proposal_id}": [{"proposal_id": proposal.pk}],
        "/api/v1/products/{product_id}": [{"product_id": product.external_id}],
        "/api/v1/briefs/{brief_id}": [{"brief_id": brief_id}],
    }
    return {"token": raw, "known": known}


def _known_for(known: dict, path: str) -> list[dict]:
    """The real objects for `path` (or the longest prefix of it that names them)."""
    for prefix in sorted(known, key=len, reverse=True):
        if path == prefix or path.startswith(prefix + "/"):
            return known[prefix]
    return []


@pytest.fixture
def api_schema(shop_data, in_this_transaction):
    loaded = schemathesis.openapi.from_wsgi(
        "/api/v1/openapi.json", application, config=_config(shop_data["token"])
    )

    return _with_real_objects(loaded, shop_data["known"])


def _with_real_objects(loaded, known: dict):
    """About half the generated paths name one of the workspace's real objects instead."""

    @loaded.hook
    def flatmap_path_parameters(context, path_parameters):
        real = _known_for(known, context.operation.path)
        if not real:
            return st.just(path_parameters)
        return st.just(path_parameters) | st.sampled_from(real)

    return loaded


def _config(token: str, *, mode: str = "all") -> schemathesis.Config:
    """Calls as the owner who holds `token`, checking that there is no server error and
    that every answer is as documented (status code, content type, headers, body). Not
    whether the schema alone predicts acceptance: the API refuses with 400 what only its
    rules can tell (a pipeline that is not registered, a store that is not connected, a
    URL that is not one), and reads some input leniently as pydantic does (`0` as a date
    is 1970-01-01, `false` as an id is 0), which the schema does not say."""
    return schemathesis.Config.from_dict(
        {
            "auth": {"openapi": {"TokenAuth": {"bearer": token}}},
            "checks": {
                "positive_data_acceptance": {"enabled": False},
                "negative_data_rejection": {"enabled": False},
            },
            "generation": {"max-examples": 15, "mode": mode},
            "operations": [
                {
                    # Its texts are embedded on the local model as the call is answered: the
                    # boundary cases (lists of hundreds) take seconds each, so a few examples.
                    "include-name": "POST /api/v1/intents/examples",
                    "generation": {"max-examples": 3},
                    "phases": {"coverage": {"enabled": False}},
                }
            ],
        }
    )


schema = schemathesis.pytest.from_fixture("api_schema").exclude(path=[SIGNED_ONLY, SEED])


@schema.parametrize()
@settings(
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented_and_never_with_a_server_error(case, shop_data):
    with transaction.atomic():  # each example starts from the same workspace
        case.call_and_validate()
        transaction.set_rollback(True)


# -- runs, followed from one answer to the next ---------------------------------------------

RUN_LINKS = {
    # An answer with a run in it, by operation and status: what may follow, on that run.
    ("post", "/api/v1/runs"): ["200", "201"],
    ("get", "/api/v1/runs/{run_id}"): ["200"],
    ("post", "/api/v1/runs/{run_id}/answer"): ["200"],
    ("post", "/api/v1/runs/{run_id}/replay"): ["201"],
    ("post", "/api/v1/runs/{run_id}/fork"): ["201"],
}
STARTS = {
    "POST /api/v1/runs",
    "POST /api/v1/runs/{run_id}/replay",
    "POST /api/v1/runs/{run_id}/fork",
}
FOLLOW = [
    "agents_api_run_detail",
    "agents_api_run_trace",
    "agents_api_run_answer",
    "agents_api_run_replay",
    "agents_api_run_fork",
    "agents_api_run_cancel",
]


def _run_operations(raw: dict) -> dict:
    """The runs' part of the schema, with OpenAPI links: a run just made can be read,
    traced, answered, replayed, forked and cancelled by the id in the answer."""
    raw["paths"] = {p: ops for p, ops in raw["paths"].items() if p.startswith("/api/v1/runs")}
    for (method, path), statuses in RUN_LINKS.items():
        for status in statuses:
            raw["paths"][path][method]["responses"][status]["links"] = {
                name: {"operationId": name, "parameters": {"run_id": "$response.body#/id"}}
                for name in FOLLOW
            }
    return raw


@pytest.fixture
def run_schema(shop_data, client, request):
    raw = _run_operations(client.get("/api/v1/openapi.json").json())
    request.getfixturevalue("in_this_transaction")  # after the test client's request
    # Valid input only: what invalid input gets is the other test's; here the runs go on.
    loaded = schemathesis.openapi.from_dict(
        raw, config=_config(shop_data["token"], mode="positive")
    )
    loaded.app = application
    _with_real_objects(loaded, shop_data["known"])

    @loaded.hook
    def map_body(context, body):
        if not isinstance(body, dict):
            return body
        if context.operation.label == "POST /api/v1/runs":  # of a real agent
            return {**body, "agent": "echo" if len(str(body)) % 2 else "noop"}
        if context.operation.label == "POST /api/v1/runs/{run_id}/fork":  # from a real step
            return {**body, "from_seq": 1 + body["from_seq"] % 3}
        return body

    return loaded


def test_runs_followed_through_their_links_answer_as_documented(run_schema, shop_data):
    """Scenarios of up to six calls: a run is started (or one of the workspace's is named),
    and the calls that follow take its id from the answer before. A worker would take each
    queued run on; here it is driven in this process, so there is something to answer,
    replay and fork."""
    made: set[int] = set()  # runs started in a scenario, through the API
    followed: list[tuple[str, int]] = []  # calls on such a run, and their status

    class Runs(run_schema.as_state_machine()):
        def setup(self):
            self.scenario = transaction.atomic()  # each scenario starts from the same runs
            self.scenario.__enter__()

        def teardown(self):
            transaction.set_rollback(True)
            self.scenario.__exit__(None, None, None)

        def after_call(self, response, case):
            run_id = (case.path_parameters or {}).get("run_id")
            if run_id in made:
                followed.append((case.operation.label, response.status_code))
            if response.status_code in (200, 201) and case.operation.label in STARTS:
                made.add(response.json()["id"])
            for run in Run.objects.filter(status="queued"):
                drive(run)

    Runs.run(
        settings=settings(
            max_examples=25,
            stateful_step_count=6,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            # Ids come from the answers, so a scenario cannot be replayed the same way:
            # a failure is reported as it happened, not shrunk.
            phases=[Phase.explicit, Phase.generate],
        )
    )

    # The links were followed: runs made in a scenario were read and changed by their ids.
    succeeded = {label.split("{run_id}")[-1] for label, status in followed if status < 300}
    assert succeeded & {"", "/trace"}
    assert succeeded & {"/answer", "/replay", "/fork", "/cancel"}


# -- what the fuzzing found, pinned -----------------------------------------------------------

FOUND = [
    # A page past what PostgreSQL's bigint OFFSET holds (was a 500 on every list)...
    ("get", "/proposals?offset=2665447103095930692342007201792", None, 422),
    ("get", "/runs?offset=9223372036854775808", None, 422),
    ("get", "/memory?offset=9223372036854775808", None, 422),
    # ... and its LIMIT (a 400 that left the request's transaction aborted).
    ("get", "/runs?limit=94818179659486213749075732391264256", None, 422),
    # A time with an offset PostgreSQL does not take (±15:59 at most), a range off the calendar.
    ("get", "/posts?from=2315-05-20T08:30:46%2B18:23", None, 200),
    ("get", "/posts?from=9999-12-30", None, 400),
    ("get", "/posts?to=0001-01-01", None, 400),
    ("get", "/metrics/outcomes?until=0001-01-01", None, 400),
    # A NUL in a filter of a list answered lazily (psycopg refused it while the answer was
    # written: a 500 that no handler of the view saw).
    ("get", "/webhook-events?topic=%F3%82%98%B1%0A%00%C2%A4", None, 400),
    # Null where the agent must have a value; deleting an agent whose proposals are kept.
    ("patch", "/agents/noop", {"webhook_topics": None}, 422),
    ("patch", "/agents/noop", {"name": None}, 422),
    ("delete", "/agents/proposer", None, 409),
    # A note edited to expire in the past: it expires now (was a check-constraint 500).
    ("patch", "/memory/notes/today", {"valid_until": "0203-07-05T03:53:39Z"}, 200),
    # A body over DATA_UPLOAD_MAX_MEMORY_SIZE: JSON, not Django's HTML page.
    ("post", "/intents/examples", {"examples": [{"text": "x" * 3_000_000, "intent": "a"}]}, 400),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), FOUND)
def test_input_the_fuzzing_found_gets_a_documented_answer_with_a_json_detail(
    client, shop_data, method, path, body, status
):
    call = getattr(client, method)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {shop_data['token']}"}
    data = json.dumps(body) if body is not None else None

    response = call(f"/api/v1{path}", data, content_type="application/json", **auth)

    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    if status >= 400:
        assert response.json()["detail"]


def test_every_authenticated_operation_documents_its_errors_as_json(client):
    document = client.get("/api/v1/openapi.json").json()

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            documented = set(operation["responses"])
            if operation.get("security"):
                assert {"400", "401", "403", "404"} <= documented, (method, path)
                if method != "get":
                    assert "409" in documented, (method, path)
            for code in documented - {"200", "201", "202", "204"}:
                content = operation["responses"][code]["content"]["application/json"]
                assert content["schema"], (method, path, code)
