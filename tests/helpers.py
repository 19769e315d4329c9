"""Small helpers for tests that start real processes."""

from __future__ import annotations

import contextlib
import csv
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from django.conf import settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def served_database_url() -> str:
    """DATABASE_URL of the test database, for server processes the tests start."""
    db = settings.DATABASES["default"]
    host = quote(db["HOST"], safe="") if db["HOST"].startswith("/") else db["HOST"]
    port = f":{db['PORT']}" if db["PORT"] else ""
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{host}{port}/{db['NAME']}"


# ../shared/data beside the repository (as in CI), loaded in place, never copied in.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def bitext_rows() -> Iterator[dict[str, str]]:
    """The Bitext customer-support messages with their intents (CDLA-Sharing-1.0)."""
    path = SHARED_DATA / "customer-messages" / "bitext-customer-support-tagged.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


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
