"""Infrastructure faults (issue 17, points 19-21): the embedded services come back by
themselves, a committed write is a success while Redis is away, and a database or Redis
hiccup is a retry or a 503, never a failed run or a 500."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis

from agents.models import Checkpoint, Run
from agents.pipelines import Pipeline, finish, register, step
from agents.tools import tool
from aios_site.accounts.models import Role
from aios_site.accounts.services import token_create
from catalog.models import Message, StoreConnection
from tests.agents.conftest import drive
from tests.factories import MembershipFactory
from tests.helpers import free_port, served_database_url, wait_until
from tests.site.test_launcher import Up, _no_launcher_outlives_its_test  # noqa: F401

# -- helpers ----------------------------------------------------------------------------------


def _closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once (Error 111)."""
    return free_port()


def _call(
    url: str, *, method: str = "GET", body: dict | None = None, token: str = "", **headers: str
) -> tuple:
    """(status, headers, body) of one real HTTP request; an error status is an answer too."""
    headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@contextlib.contextmanager
def _web(**env: str) -> Iterator[str]:
    """`aios web` on the test database with `env` over the session's (a Redis or a database
    that is down); its URL once it answers at all (healthz may well be 503)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "aios_site.cli", "web", "--port", str(port)],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "aios_site.settings.base",
            "DATABASE_URL": served_database_url(),
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        assert process.poll() is None, "aios web exited"
        try:
            _call(f"{url}/api/v1/healthz")
        except OSError:
            return False
        return True

    try:
        wait_until(answering, timeout=60, interval=0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def _operator_token(workspace) -> str:
    membership = MembershipFactory(
        workspace=workspace, role=Role.OPERATOR, user__username="olivia@shop.example"
    )
    return token_create(membership=membership, name="t")[1]


# -- 19. the embedded services are supervised --------------------------------------------------


def _healthy_with_a_worker(up: Up) -> bool:
    status, _, body = _call(up.url("/api/v1/healthz"))
    return status == 200 and json.loads(body)["workers"] >= 1


def _valkey_process(data_dir: Path) -> psutil.Process:
    valkey_dir = str(data_dir / "valkey")
    return next(
        process
        for process in psutil.process_iter(["name", "cwd"])
        if "valkey" in (process.info["name"] or "") and process.info["cwd"] == valkey_dir
    )


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])


@pytest.mark.slow
def test_up_restarts_a_killed_embedded_valkey_and_says_so_and_is_healthy_again(tmp_path):
    data_dir = tmp_path / "data"
    up = Up(data_dir, "--demo")
    up.wait_for(r"aios: ready in")
    killed = _valkey_process(data_dir)

    killed.send_signal(signal.SIGKILL)

    up.wait_for(r"aios: embedded Valkey exited; restarting it", timeout=30)
    up.wait_for(r"aios: embedded Valkey is back", timeout=60)
    wait_until(lambda: _healthy_with_a_worker(up), timeout=90, interval=0.5)
    assert _valkey_process(data_dir).pid != killed.pid
    up.every_process(data_dir)  # what the cleanup must stop, the new Valkey included


@pytest.mark.slow
def test_up_restarts_a_killed_embedded_postgresql_and_says_so_and_is_healthy_again(tmp_path):
    data_dir = tmp_path / "data"
    up = Up(data_dir, "--demo")
    up.wait_for(r"aios: ready in")
    killed = _postmaster_pid(data_dir)

    os.kill(killed, signal.SIGKILL)

    up.wait_for(r"aios: embedded PostgreSQL exited; restarting it", timeout=30)
    up.wait_for(r"aios: embedded PostgreSQL is back", timeout=90)
    wait_until(lambda: _healthy_with_a_worker(up), timeout=90, interval=0.5)
    assert _postmaster_pid(data_dir) != killed
    up.every_process(data_dir)


# -- 20. a committed write answers success while Redis is down ----------------------------------


@pytest.fixture
def redis_down_web():
    """A web process whose Redis (broker, cache, channel layer) refuses every connection."""
    down = f"redis://127.0.0.1:{_closed_port()}/0"
    with _web(REDIS_URL=down) as url:
        yield url


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_run_posted_while_redis_is_down_answers_201_and_the_sweep_queues_it_later(
    redis_down_web, workspace, make_agent, settings
):
    make_agent("demo.echo")
    token = _operator_token(workspace)

    status, _, body = _call(
        f"{redis_down_web}/api/v1/runs",
        method="POST",
        body={"agent": "demo-echo", "input": {"text": "hi"}},
        token=token,
    )

    assert status == 201, body
    run = Run.objects.get(pk=json.loads(body)["id"])
    assert run.status == "queued"
    _sweep_with_redis_back(settings)
    assert _queued_message_for(run.pk)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_message_posted_while_redis_is_down_answers_201_and_the_sweep_queues_its_run_later(
    redis_down_web, workspace, make_agent, settings
):
    StoreConnection.objects.create(
        workspace=workspace,
        shop_domain="alice.myshopify.com",
        api_base_url="https://alice.myshopify.com",
        access_token_encrypted="x",
        languages=["en"],
    )
    make_agent("catalog.reply_to_customer", slug="support", priority="interactive")
    token = _operator_token(workspace)

    status, _, body = _call(
        f"{redis_down_web}/api/v1/messages",
        method="POST",
        body={
            "store": "alice.myshopify.com",
            "customer_email": "c@example.com",
            "body": "Where is my order?",
            "external_id": "m-1",
        },
        token=token,
    )

    assert status == 201, body
    message = Message.objects.get(pk=json.loads(body)["id"])
    run = Run.objects.get(workspace=workspace, idempotency_key=f"reply:{message.pk}")
    assert run.status == "queued"
    _sweep_with_redis_back(settings)
    assert _queued_message_for(run.pk)


def test_a_task_sent_while_the_broker_is_down_is_logged_and_left_for_its_sweep(caplog):
    from celery import Celery

    from aios_site.queues import send

    app = Celery("down", broker=f"redis://127.0.0.1:{_closed_port()}/0")
    app.conf.broker_connection_timeout = 1

    @app.task(name="test.nothing")
    def nothing(row_id: int) -> None:
        pass

    sent = send(nothing, 7, queue="default")

    assert sent is False
    assert "could not queue test.nothing(7,)" in caplog.text and "its sweep will" in caplog.text


def _sweep_with_redis_back(settings) -> None:
    """This process talks to the session's Redis, which is up: the sweep finds the run
    whose message never left and queues it."""
    from agents.services.recovery import runs_sweep

    settings.AIOS_RUN_QUEUED_STALE_SECONDS = 0
    assert runs_sweep()["requeued"] >= 1


def _queued_message_for(run_id: int) -> bool:
    """A Celery message for the run is waiting in one of the queues (Redis lists)."""
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    for queue in ("interactive", "default", "bulk"):
        for raw in client.lrange(queue, 0, -1):
            message = json.loads(raw)
            args = json.loads(base64.b64decode(message["body"]))[0]
            if message["headers"].get("task") == "agents.run_advance" and args == [run_id]:
                return True
    return False


# -- 21. a hiccup is a retry, and the API says 503 ----------------------------------------------

_hiccups: dict[str, int] = {}


@tool("test.redis_once")
def _redis_once(*, key: str) -> str:
    """The first call meets a Redis that refuses connections (a real Error 111), the next
    ones the session's own."""
    from django.conf import settings

    _hiccups[key] = _hiccups.get(key, 0) + 1
    url = f"redis://127.0.0.1:{_closed_port()}/0" if _hiccups[key] == 1 else settings.REDIS_URL
    redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    return "pong"


@register
class RedisHiccup(Pipeline):
    name = "test.redis_hiccup"

    @step(attempts=3, backoff=0.01)
    def start(self, ctx):
        return finish({"answer": ctx.tool("test.redis_once", key=ctx.input["key"])})


@pytest.mark.django_db
def test_a_redis_connection_error_inside_a_step_is_retried_and_the_run_succeeds(make_agent, key):
    from agents.services import run_start

    run, _ = run_start(agent=make_agent("test.redis_hiccup"), input={"key": key})

    done = drive(run)

    assert (done.status, done.outcome) == ("succeeded", {"answer": "pong"})
    attempts = list(Checkpoint.objects.filter(run=done).values_list("attempt", "status", "error"))
    assert [(attempt, status) for attempt, status, _ in attempts] == [(1, "error"), (2, "ok")]
    assert attempts[0][2].startswith("ConnectionError: Error 111 connecting")


@pytest.fixture
def database_down_web():
    """A web process whose database refuses every connection."""
    down = f"postgres://postgres@127.0.0.1:{_closed_port()}/aios"
    with _web(DATABASE_URL=down) as url:
        yield url


@pytest.mark.slow
def test_the_api_answers_503_with_a_json_detail_while_the_database_is_unreachable(
    database_down_web,
):
    status, headers, body = _call(f"{database_down_web}/api/v1/runs", token="aios_whatever")

    assert (status, headers["Retry-After"]) == (503, "5")
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"detail": "the database is unavailable; try again shortly"}


@pytest.mark.slow
def test_pages_answer_a_503_error_page_while_the_database_is_unreachable(database_down_web):
    # A signed-in browser: its session is looked up in the database.
    status, headers, body = _call(
        f"{database_down_web}/w/alice/board/", Cookie="sessionid=" + "s" * 32
    )

    assert (status, headers["Content-Type"]) == (503, "text/html; charset=utf-8")
    assert b"<h1>503</h1>" in body and b"The database is unavailable" in body


def test_redis_postgresql_and_broker_errors_are_transient():
    import django.db
    import kombu.exceptions
    import psycopg

    from agents.pipelines import is_transient

    errors = [
        redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379."),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        kombu.exceptions.OperationalError("Error 111 connecting"),
        django.db.OperationalError("connection refused"),
        django.db.InterfaceError("connection already closed"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
    ]
    assert [is_transient(error) for error in errors] == [True] * len(errors)
