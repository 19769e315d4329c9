"""Issue 17, points 12, 16 and 18: replays that hold, sockets that close, fetches that stay out.

12. A replay of an unchanged inventory-alert run is `identical`; a replay of a failed run
    fails at the same step with the same error.
16. A member removed from a workspace stops receiving its websocket pushes at once.
18. Research fetches and owner-entered URLs cannot reach private addresses, neither through
    a redirect nor through a name that resolves differently the second time.
"""

from __future__ import annotations

import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError

from agents.models import Agent, Provider
from agents.pipelines import PermanentError, Pipeline, finish, goto, register, step
from agents.services import run_replay, run_start
from agents.services.models import provider_save
from aios_site import netguard
from aios_site.accounts.models import Membership, Role
from aios_site.live import workspace_broadcast
from approvals.audit import Actor
from approvals.effectors import endpoint_post
from approvals.models import Proposal, WebhookEndpoint
from approvals.services import proposal_commit, webhook_endpoint_save
from catalog.connector import ShopifyConnector
from catalog.models import Alert, StoreConnection
from catalog.services import demo_store_ensure
from catalog.services import store_connect as store_connect_service
from tests.agents.conftest import drive
from tests.catalog.conftest import store  # noqa: F401 - a fixture
from tests.catalog.test_pipelines import _sold, _stocked_product
from tests.helpers import default_provider
from tests.sockets import ORIGIN, connect, frame_with, session_cookie
from tests.sockets import run as run_async

# -- 12. replay -------------------------------------------------------------------------------


def _inventory_alert_finished(store, capture) -> object:  # noqa: F811
    variant = _stocked_product(store, quantity=6)
    _sold(store, variant, 60)  # 2 a day: 3 days of cover, below the threshold
    agent = Agent.objects.get(workspace=store.workspace, slug="inventory-watcher")
    run, _ = run_start(agent=agent, input={"variant_id": variant.external_id})
    run = drive(run)
    proposal = Proposal.objects.get(run=run)
    with capture(execute=True):
        proposal_commit(proposal_id=proposal.pk)
    run = drive(run)
    assert run.status == "succeeded" and run.outcome["status"] == "committed"
    return run


@pytest.mark.django_db
def test_a_replay_of_an_unchanged_inventory_alert_run_is_identical(
    store,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    original = _inventory_alert_finished(store, django_capture_on_commit_callbacks)

    replay = drive(run_replay(run=original))

    assert replay.replay_verdict == "identical"
    assert (replay.status, replay.outcome) == ("succeeded", original.outcome)
    assert Alert.objects.count() == 1 and Alert.objects.get().run_id == original.pk


@register
class FailsLate(Pipeline):
    """Reads the clock, counts, then calls something that keeps failing: fails at `check`."""

    name = "test.fails_late"

    @step()
    def start(self, ctx):
        return goto("check", started_at=ctx.now())

    @step(attempts=2, backoff=0.01)
    def check(self, ctx):
        calls = ctx.tool("demo.count", key=ctx.input["key"])
        ctx.tool("demo.flaky", key=ctx.input["key"], failures=99)
        return goto("never", calls=calls)

    @step()
    def never(self, ctx):
        raise AssertionError("not reached")


@register
class FailsInCode(Pipeline):
    """Fails in its own code, after a call: nothing journaled says so."""

    name = "test.fails_in_code"

    @step()
    def start(self, ctx):
        if ctx.random() >= 0:
            raise PermanentError("the pipeline gives up")
        return goto("start")


@pytest.mark.django_db
def test_a_replay_of_a_run_that_failed_at_a_call_fails_there_with_the_same_error(make_agent, key):
    original = drive(run_start(agent=make_agent("test.fails_late"), input={"key": key})[0])
    assert (original.status, original.current_step) == ("failed", "check")
    assert original.error == "TransientError: flaky call 2 of 99 planned failures"

    replay = drive(run_replay(run=original))

    assert (replay.status, replay.current_step, replay.error) == (
        "failed",
        "check",
        original.error,
    )
    assert replay.replay_verdict == "identical"
    assert list(replay.checkpoints.values_list("seq", "step", "status")) == [
        (1, "start", "ok"),
        (2, "check", "error"),
    ]


@pytest.mark.django_db
def test_a_replay_of_a_run_that_failed_in_its_own_code_fails_there_with_the_same_error(
    make_agent,
):
    original = drive(run_start(agent=make_agent("test.fails_in_code"), input={})[0])
    assert original.error == "PermanentError: the pipeline gives up"

    replay = drive(run_replay(run=original))

    assert (replay.status, replay.current_step, replay.error) == (
        "failed",
        "start",
        original.error,
    )
    assert replay.replay_verdict == "identical"


@pytest.mark.django_db
def test_a_replay_of_a_failed_run_whose_code_now_fails_differently_says_so(make_agent, monkeypatch):
    original = drive(run_start(agent=make_agent("test.fails_in_code"), input={})[0])

    def changed(self, ctx):
        ctx.random()
        raise PermanentError("something else")

    monkeypatch.setattr(FailsInCode, "start", step()(changed))
    replay = drive(run_replay(run=original))

    [divergence] = replay.replay_verdict
    assert (divergence["step"], divergence["seq"], divergence["position"]) == ("start", 1, None)
    assert divergence["expected"] == {"error": "PermanentError: the pipeline gives up"}
    assert divergence["got"] == {"error": "PermanentError: something else"}


# -- 16. sockets of removed members -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_member_removed_from_the_workspace_gets_no_more_pushes_and_its_socket_closes(
    operator, workspace
):
    async def scenario():
        cookie = await sync_to_async(session_cookie)(operator)
        ws, connected, _ = await connect("/ws/w/alice/", [ORIGIN, (b"cookie", cookie)])
        assert connected
        await ws.receive_from(timeout=5)  # the live status
        await sync_to_async(Membership.objects.filter(user=operator).delete)()
        await sync_to_async(workspace_broadcast)(
            workspace_id=workspace.pk,
            template="shell/live.html#live-status",
            context={"live": True},
        )
        first = await ws.receive_output(timeout=5)
        then_nothing = await ws.receive_nothing(timeout=1)
        await ws.disconnect()
        return first, then_nothing

    first, then_nothing = run_async(scenario())

    assert first == {"type": "websocket.close", "code": 4403}
    assert then_nothing


@pytest.mark.django_db(transaction=True)
def test_a_member_demoted_to_viewer_keeps_its_socket_but_sees_cards_without_decisions(
    operator, workspace, make_agent
):
    from approvals.events import proposal_changed
    from tests.helpers import pending_proposal

    async def scenario():
        cookie = await sync_to_async(session_cookie)(operator)
        ws, connected, _ = await connect("/ws/w/alice/", [ORIGIN, (b"cookie", cookie)])
        assert connected
        await ws.receive_from(timeout=5)  # the live status
        membership = await sync_to_async(Membership.objects.get)(user=operator)
        membership.role = Role.VIEWER
        await sync_to_async(membership.save)(update_fields=["role"])
        proposal = await sync_to_async(pending_proposal)(await sync_to_async(make_agent)())
        await sync_to_async(proposal_changed)(proposal, created=True)
        card = await frame_with(ws, f'id="proposal-{proposal.pk}"')
        await ws.disconnect()
        return card

    card = run_async(scenario())

    assert "Approve" not in card


# -- 18. outbound requests stay off the server's own network ----------------------------------


class Page:
    """A local HTTP server on `host`: answers every GET (and POST) with `body`, or redirects
    to `redirect_to`, and records the Host header of each request it got."""

    def __init__(self, host: str = "127.0.0.1", *, body: str = "hello", redirect_to: str = ""):
        self.hosts: list[str] = []
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                page.hosts.append(self.headers.get("Host", ""))
                if redirect_to:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.do_GET()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}/"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def page():
    serving = Page()
    yield serving
    serving.close()


@pytest.fixture
def internal():
    """A server on the machine's own network, which nothing typed in may reach."""
    serving = Page("127.0.0.2", body="internal secrets")
    yield serving
    serving.close()


@pytest.fixture
def production(settings):
    settings.AIOS_FETCH_PRIVATE_ADDRESSES = False  # as in production
    settings.AIOS_FETCH_ALLOWED_NETWORKS = []
    return settings


@register
class Fetch(Pipeline):
    """Reads one page as the content writer reads a brief's research URLs."""

    name = "test.fetch"

    @step()
    def start(self, ctx):
        answer = ctx.http("GET", ctx.input["url"], timeout=5, max_bytes=1000, public_only=True)
        return finish(answer)


def _fetched(make_agent, url: str):
    return drive(run_start(agent=make_agent("test.fetch"), input={"url": url})[0])


@pytest.mark.django_db
@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "10.1.2.3", "169.254.169.254", "[::1]"],
    ids=["loopback", "private", "metadata", "ipv6-loopback"],
)
def test_a_research_fetch_to_the_servers_own_network_is_refused(make_agent, production, page, host):
    run = _fetched(make_agent, f"http://{host}:{page.port}/latest/meta-data/")

    address = host.strip("[]")
    assert run.status == "failed"
    assert run.error == f"PermanentError: {address} is not a public address ({address}): not read"
    assert page.hosts == []


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["internal", "metadata"])
def test_a_research_fetch_redirected_from_a_public_page_to_a_private_one_is_refused(
    make_agent, production, internal, target
):
    production.AIOS_FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # stands for the public internet
    inside = internal.url if target == "internal" else "http://169.254.169.254/latest/"
    public = Page(redirect_to=inside)
    try:
        run = _fetched(make_agent, public.url)
    finally:
        public.close()

    address = "127.0.0.2" if target == "internal" else "169.254.169.254"
    assert public.hosts == [f"127.0.0.1:{public.port}"]  # the public page was asked
    assert run.status == "failed"
    assert run.error == f"PermanentError: {address} is not a public address ({address}): not read"
    assert internal.hosts == []


@pytest.mark.django_db
def test_a_research_fetch_follows_redirects_between_public_pages(make_agent, production, page):
    production.AIOS_FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    hop = Page(redirect_to=page.url)
    try:
        run = _fetched(make_agent, hop.url)
    finally:
        hop.close()

    assert (run.status, run.outcome) == (
        "succeeded",
        {"status": 200, "body": "hello", "truncated": False},
    )


@pytest.mark.django_db
def test_a_research_fetch_connects_to_the_address_it_checked_not_to_what_the_name_says_next(
    make_agent, production, page, internal, monkeypatch
):
    """DNS rebinding: the name answers a public address when checked, then a private one."""
    production.AIOS_FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # stands for the public internet
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "127.0.0.2", "127.0.0.2", "127.0.0.2"])
    asked: list[str] = []

    def rebinding(host, port, *args, **kwargs):
        if host != "shop.rebind.test":
            return real(host, port, *args, **kwargs)
        asked.append(host)
        address = next(answers)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    run = _fetched(make_agent, f"http://shop.rebind.test:{page.port}/")

    assert (run.status, run.outcome["body"]) == ("succeeded", "hello")
    assert asked == ["shop.rebind.test"]  # resolved once, for the check
    assert page.hosts == [f"shop.rebind.test:{page.port}"]  # connected there, by its name
    assert internal.hosts == []


@pytest.mark.django_db
def test_a_research_fetch_gives_up_after_five_redirects(make_agent, production):
    production.AIOS_FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    looping = Page(redirect_to="/again")
    try:
        run = _fetched(make_agent, looping.url)
    finally:
        looping.close()

    assert run.error == "PermanentError: more than 5 redirects: not read"
    assert len(looping.hosts) == 6


@pytest.mark.django_db
def test_a_provider_on_the_servers_own_network_is_refused_when_saved(workspace, production):
    with pytest.raises(ValidationError) as refused:
        provider_save(workspace=workspace, name="mine", base_url="http://169.254.169.254/v1")

    assert refused.value.message_dict == {
        "base_url": [
            "169.254.169.254 is not a public address (169.254.169.254): the server does not "
            "call it (AIOS_FETCH_ALLOWED_NETWORKS can allow it)"
        ]
    }
    assert not Provider.objects.filter(workspace=workspace, name="mine").exists()


@pytest.mark.django_db
def test_a_provider_on_an_allowed_network_is_saved(workspace, production):
    production.AIOS_FETCH_ALLOWED_NETWORKS = ["10.0.0.5/32"]

    provider = provider_save(workspace=workspace, name="lan", base_url="http://10.0.0.5:11434/v1")

    assert provider.base_url == "http://10.0.0.5:11434/v1"


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["api_base_url", "outbound_url"])
def test_a_store_whose_urls_point_at_the_servers_own_network_is_not_connected(
    workspace, production, field
):
    with pytest.raises(ValidationError) as refused:
        store_connect_service(
            workspace=workspace,
            shop_domain="alice-shop.myshopify.com",
            access_token="shpat_x",
            webhook_secrets=["s" * 20],
            actor=Actor("user", "test"),
            **{field: "http://10.0.0.1:8080/admin"},
        )

    assert list(refused.value.message_dict) == [field]
    assert "10.0.0.1 is not a public address" in refused.value.message_dict[field][0]
    assert not StoreConnection.objects.exists()


@pytest.mark.django_db
def test_an_outbound_webhook_to_the_servers_own_network_is_refused_when_saved(
    workspace, production
):
    with pytest.raises(ValidationError) as refused:
        webhook_endpoint_save(
            workspace=workspace,
            name="publish",
            url="http://[::1]:9000/hook",
            secret="s" * 20,
            actor=Actor("user", "test"),
        )

    assert "::1 is not a public address" in refused.value.message_dict["url"][0]
    assert not WebhookEndpoint.objects.exists()


def test_the_network_guard_imports_no_app():
    source = Path(netguard.__file__).read_text()
    imported = re.findall(r"^(?:from|import) (\S+)", source, flags=re.MULTILINE)
    assert [name for name in imported if name.split(".")[0] in APPS] == []


APPS = {"agents", "approvals", "catalog", "memory", "aios_site"}


@pytest.mark.django_db
def test_the_demo_shop_on_its_own_simulator_is_connected_where_private_addresses_are_refused(
    workspace, owner, production
):
    demo_store_ensure(workspace=workspace, simulator_url="http://127.0.0.1:8123")

    connection = StoreConnection.objects.get(workspace=workspace)
    assert connection.api_base_url == "http://127.0.0.1:8123"
    assert connection.outbound_url == "http://127.0.0.1:8123/outbound/replies"
    assert WebhookEndpoint.objects.get(workspace=workspace).url.startswith("http://127.0.0.1:8123")


@pytest.mark.django_db
def test_the_models_page_says_why_a_provider_on_the_servers_own_network_was_not_saved(
    owner_client, workspace, production
):
    response = owner_client.post(
        "/w/alice/models/provider/",
        {"name": "mine", "base_url": "http://10.0.0.1/v1"},
        follow=True,
    )

    assert "Not saved" in response.content.decode()
    assert "10.0.0.1 is not a public address" in response.content.decode()
    assert not Provider.objects.filter(workspace=workspace, name="mine").exists()


@pytest.mark.django_db
def test_a_store_whose_name_later_resolves_to_the_servers_own_network_is_not_called(
    store,  # noqa: F811
    production,
    internal,
    monkeypatch,
):
    """Saved while its name was public; now the name answers a private address."""
    store.api_base_url = f"http://shop.rebind.test:{internal.port}"
    store.save(update_fields=["api_base_url"])
    real = socket.getaddrinfo

    def rebound(host, port, *args, **kwargs):
        if host == "shop.rebind.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    with pytest.raises(
        PermanentError, match=r"shop\.rebind\.test is not a public address \(127\.0\.0\.2\)"
    ):
        ShopifyConnector(store).product_get(1)

    assert internal.hosts == []


class Dns:
    """Made-up names answered with whatever address the test sets now (others resolve as
    usual): what the owner of a name can do with its records at any time."""

    PUBLIC = "93.184.216.34"

    def __init__(self, monkeypatch) -> None:
        self.answers: dict[str, str] = {}
        self.asked: list[str] = []
        real = socket.getaddrinfo

        def resolve(host, port, *args, **kwargs):
            if host not in self.answers:
                return real(host, port, *args, **kwargs)
            self.asked.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (self.answers[host], port))]

        monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.fixture
def dns(monkeypatch) -> Dns:
    return Dns(monkeypatch)


def _asked_the_model(make_agent):
    return drive(run_start(agent=make_agent("demo.ask_model"), input={"question": "Hi?"})[0])


@pytest.mark.django_db
def test_a_model_provider_whose_name_now_resolves_to_the_servers_own_network_is_not_called(
    workspace, make_agent, fake_openai, production, dns
):
    """Saved while its name answered a public address; now it answers loopback."""
    port = fake_openai.base_url.split(":")[2].split("/")[0]
    dns.answers["models.rebind.test"] = Dns.PUBLIC
    default_provider(workspace, f"http://models.rebind.test:{port}/v1")
    dns.answers["models.rebind.test"] = "127.0.0.1"  # where the model server listens

    run = _asked_the_model(make_agent)

    assert run.status == "failed"
    assert run.error == (
        "PermanentError: the model server's address 127.0.0.1 (models.rebind.test) is not "
        "public: refused (set AIOS_FETCH_PRIVATE_ADDRESSES, or its network in "
        "AIOS_FETCH_ALLOWED_NETWORKS, to allow it)"
    )
    assert fake_openai.requests == []


@pytest.mark.django_db
def test_a_model_provider_on_the_servers_own_network_answers_where_the_settings_allow_it(
    workspace, make_agent, fake_openai, settings, dns
):
    settings.AIOS_FETCH_PRIVATE_ADDRESSES = True  # as the tests run; a server on its own LAN
    port = fake_openai.base_url.split(":")[2].split("/")[0]
    dns.answers["models.lan.test"] = "127.0.0.1"
    default_provider(workspace, f"http://models.lan.test:{port}/v1")
    dns.asked.clear()

    run = _asked_the_model(make_agent)

    assert (run.status, run.outcome["answer"]) == ("succeeded", "echo: Hi?")
    assert dns.asked == ["models.lan.test"]  # resolved once, by the guard, then connected to
    assert fake_openai.headers[0]["host"] == f"models.lan.test:{port}"  # by its name


@pytest.mark.django_db
def test_a_model_server_redirecting_elsewhere_is_not_followed(
    workspace, make_agent, fake_openai, production, internal
):
    production.AIOS_FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # stands for the public internet
    public = Page(redirect_to=f"{internal.url}v1/chat/completions")
    try:
        default_provider(workspace, f"{public.url}v1")
        run = _asked_the_model(make_agent)
    finally:
        public.close()

    assert public.hosts == [f"127.0.0.1:{public.port}"]
    assert run.status == "failed"
    assert run.error.startswith("PermanentError: the model endpoint refused the request")
    assert internal.hosts == []


def _publish_endpoint(workspace, url: str) -> None:
    webhook_endpoint_save(
        workspace=workspace, name="publish", url=url, secret="s" * 20, actor=Actor("user", "t")
    )


@pytest.mark.django_db
def test_an_outbound_webhook_whose_name_now_resolves_to_the_servers_own_network_is_not_sent(
    workspace, production, internal, dns
):
    """Saved while its name answered a public address; now it answers a private one."""
    dns.answers["hooks.rebind.test"] = Dns.PUBLIC
    _publish_endpoint(workspace, f"http://hooks.rebind.test:{internal.port}/hook")
    dns.answers["hooks.rebind.test"] = "127.0.0.2"

    with pytest.raises(PermanentError) as refused:
        endpoint_post(workspace, "publish", {"post": 1}, "key-1", {})

    assert str(refused.value) == (
        f"http://hooks.rebind.test:{internal.port}/hook: hooks.rebind.test is not a public "
        "address (127.0.0.2): not sent"
    )
    assert internal.hosts == []


@pytest.mark.django_db
def test_an_outbound_webhook_redirected_from_a_public_receiver_to_a_private_one_is_not_followed(
    workspace, production, internal
):
    production.AIOS_FETCH_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # stands for the public internet
    public = Page(redirect_to=internal.url)
    try:
        _publish_endpoint(workspace, f"{public.url}hook")
        with pytest.raises(PermanentError) as refused:
            endpoint_post(workspace, "publish", {"post": 1}, "key-1", {})
    finally:
        public.close()

    assert public.hosts == [f"127.0.0.1:{public.port}"]  # the receiver was asked
    assert str(refused.value) == (
        f"{public.url}hook: 127.0.0.2 is not a public address (127.0.0.2): not sent"
    )
    assert internal.hosts == []


@pytest.mark.django_db
def test_the_demo_shops_blog_and_helpdesk_on_its_own_simulator_are_posted_to_in_production(
    workspace, owner, production, internal
):
    """The system made these receivers on this machine; an owner's endpoint at the same
    address is still refused when it is posted to."""
    from approvals.effectors import signed_post
    from catalog.effectors import _reply_post
    from catalog.models import Message

    demo_store_ensure(workspace=workspace, simulator_url=internal.url.rstrip("/"))
    connection = StoreConnection.objects.get(workspace=workspace)

    assert endpoint_post(workspace, "publish", {"post": 1}, "key-1", {})["status"] == 200
    message = Message.objects.create(
        workspace=workspace,
        connection=connection,
        external_id="m-1",
        customer_email="nina@example.com",
        body="Hi",
    )
    assert _reply_post(message, {"body": "Hello"}, "key-2")()["status"] == 200
    assert len(internal.hosts) == 2
    with pytest.raises(PermanentError, match="is not a public address"):
        signed_post(f"{internal.url}hook", {"x": 1}, secret="s" * 20, headers={})
    assert len(internal.hosts) == 2
