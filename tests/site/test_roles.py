"""The separate roles of a multi-machine deployment, against configured DATABASE_URL/REDIS_URL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings

from aios_site.celery import WORKER_KEY, live_worker_count
from tests.helpers import served_database_url, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def role(django_db_setup):
    """Starts `aios <role>` on the test database and Redis, as a deployment would with URLs."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "aios_site.settings.base",
        "DATABASE_URL": served_database_url(),
    }

    def start(*args: str) -> subprocess.Popen:
        return _role(env, *args)

    return start


def _role(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "aios_site.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_worker_started_with_urls_counts_as_live_until_it_stops(role):
    client = redis.Redis.from_url(settings.REDIS_URL)
    before = set(client.scan_iter(match=WORKER_KEY.format("*")))
    worker = role("worker", "-Q", "default", "-c", "1")
    try:
        wait_until(lambda: set(client.scan_iter(match=WORKER_KEY.format("*"))) - before)
        [key] = set(client.scan_iter(match=WORKER_KEY.format("*"))) - before
        assert live_worker_count() >= 1
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=20)
    output = worker.stdout.read()
    assert ".> default" in output and ".> bulk" not in output  # only the queue it was given
    assert not client.exists(key)  # gone at once on a clean stop, not only when it expires


def test_beat_started_with_urls_uses_the_database_scheduler_and_stops_on_sigterm(role):
    beat = role("beat")
    time.sleep(6)
    assert beat.poll() is None
    beat.send_signal(signal.SIGTERM)
    beat.wait(timeout=20)
    output = beat.stdout.read()
    assert "django_celery_beat.schedulers.DatabaseScheduler" in output
    assert "beat: Starting..." in output
