"""Small helpers for tests: real processes, threads released together, the objects many
tests set up the same way."""

from __future__ import annotations

import contextlib
import csv
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def superuser_cursor():
    """A cursor on the test database as the cluster's superuser: someone with more rights
    than the application has, for tests that tamper with what the application cannot."""
    import psycopg
    import pytest

    admin = os.environ.get("AIOS_TEST_ADMIN_DATABASE_URL")
    if not admin:
        pytest.skip("needs the embedded PostgreSQL's superuser (no DATABASE_URL configured)")
    dbname = settings.DATABASES["default"]["NAME"]
    with psycopg.connect(admin, dbname=dbname, autocommit=True) as admin_connection:
        yield admin_connection.cursor()


def served_database_url() -> str:
    """DATABASE_URL of the test database, for server processes the tests start."""
    db = settings.DATABASES["default"]
    host = quote(db["HOST"], safe="") if db["HOST"].startswith("/") else db["HOST"]
    port = f":{db['PORT']}" if db["PORT"] else ""
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{host}{port}/{db['NAME']}"


# The public data sets the tests read, vendored from shared/data with their sources and
# licences (tests/data/SOURCES.md, tests/data/licenses/), so a clone anywhere runs the suite.
SHARED_DATA = Path(__file__).resolve().parent / "data"


def bitext_rows() -> Iterator[dict[str, str]]:
    """The Bitext customer-support messages with their intents (CDLA-Sharing-1.0)."""
    path = SHARED_DATA / "customer-messages" / "bitext-customer-support-tagged.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def at_once(calls: list[Callable[[], object]]) -> list[object]:
    """Each call in a thread of its own, all released together; what each returned, in order
    (None for one that raised: its thread prints the error). Each thread closes its database
    connection at the end, as a request does."""
    start = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        start.wait()
        try:
            results[index] = call()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def pending_proposal(
    agent,
    *,
    target: str = "notes/x",
    payload: dict | None = None,
    effector: str = "core.note",
    risk: str = "medium",
    **fields,
):
    """A proposal of `agent` waiting for a person, made directly (no run step, no policy)."""
    from approvals.models import Proposal

    payload = {"content": "x"} if payload is None else payload
    return Proposal.objects.create(
        workspace_id=agent.workspace_id,
        agent=agent,
        seq=1,
        step="propose",
        effector=effector,
        target=target,
        payload=payload,
        proposed_payload=payload,
        payload_hash="h",
        risk=risk,
        decision="require_approval",
        **fields,
    )


@contextlib.contextmanager
def effect_then(effector_class, error: BaseException) -> Iterator[None]:
    """While the block runs, the effector's commit applies its change and then raises
    `error`: a worker whose connection dropped (an OSError) or that was killed (SystemExit,
    which nothing in the commit protocol catches) after the effect, before recording it."""
    real_commit = effector_class.commit

    def applies_then_fails(self, *args, **kwargs):
        real_commit(self, *args, **kwargs)
        raise error

    effector_class.commit = applies_then_fails
    try:
        yield
    finally:
        effector_class.commit = real_commit


def serve_models_from(django_settings, base_url: str, *, timeout: float) -> None:
    """The OpenAI-compatible server at `base_url` as the remote provider the settings name
    (what a workspace without a provider of its own uses)."""
    django_settings.AIOS_LLM_BASE_URL = base_url
    django_settings.AIOS_LLM_API_KEY = "test-key"
    django_settings.AIOS_LLM_MODEL_SMALL = "qwen-plus"
    django_settings.AIOS_LLM_MODEL_LARGE = "qwen-max"
    django_settings.AIOS_LLM_TIMEOUT = timeout


def models_free() -> None:
    """An explicit default price of zero: a test model server costs nothing (a paid model
    without any price is refused). A test's own price for a model still applies over it."""
    from agents.llm.budgets import ANY_MODEL
    from agents.models import ModelPrice

    ModelPrice.objects.get_or_create(
        workspace=None,
        model=ANY_MODEL,
        defaults={"input_per_million": 0, "output_per_million": 0},
    )


def default_provider(workspace, base_url: str):
    """The OpenAI-compatible server at `base_url` as the workspace's own default provider,
    its models named "small" and "large"."""
    from agents.services.models import provider_save

    return provider_save(
        workspace=workspace,
        name="test",
        base_url=base_url,
        api_key="k",
        model_small="small",
        model_large="large",
        is_default=True,
        prices={"*": {"input_per_million": Decimal(0), "output_per_million": Decimal(0)}},
    )


def wait_until(condition, timeout: float = 60, interval: float = 0.1) -> None:
    """Polls until `condition()` is true; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"still not true after {timeout} s")


@contextlib.contextmanager
def web_serving(
    *, processes: int = 1, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`aios web` on the test database: its URL once healthy, and its process."""
    port = port or free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "aios_site.settings.base",
        "DATABASE_URL": served_database_url(),
    }
    command = ["web", "--port", str(port), "--processes", str(processes)]
    process = subprocess.Popen(
        [sys.executable, "-m", "aios_site.cli", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(url) or process.poll() is not None, timeout=60, interval=0.2)
        assert process.poll() is None, "aios web exited"
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=20)


def _healthy(url: str) -> bool:
    try:
        urllib.request.urlopen(f"{url}/api/v1/healthz", timeout=2)
    except OSError:
        return False
    return True
