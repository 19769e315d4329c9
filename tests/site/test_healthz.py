from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import free_port

# Serves one healthz request in a fresh process whose settings point wherever `env` says,
# so a part can really be unreachable without disturbing this test session.
HEALTHZ_IN_A_PROCESS = """
import json, django
django.setup()
from django.test import Client
response = Client(HTTP_HOST="127.0.0.1").get("/api/v1/healthz")
print(json.dumps({"status": response.status_code, "body": response.json()}))
"""


def _healthz_with(**overrides: str) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "aios_site.settings.base", **overrides}
    result = subprocess.run(
        [sys.executable, "-c", HEALTHZ_IN_A_PROCESS],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.django_db
def test_healthz_reports_database_and_redis_ok_without_authentication(client):
    response = client.get("/api/v1/healthz")

    assert response.status_code == 200
    # No Celery worker runs in this test, and healthz counts only workers that answer.
    assert response.json() == {"database": "ok", "redis": "ok", "workers": 0}


def test_healthz_is_503_and_names_redis_when_redis_is_down():
    result = _healthz_with(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")

    assert result == {
        "status": 503,
        "body": {
            "database": "ok",
            "redis": "unavailable",
            "workers": 0,
            "detail": "redis unavailable",
        },
    }


def test_healthz_is_503_and_names_the_database_when_it_is_down(tmp_path):
    socket_dir = str(tmp_path).replace("/", "%2F")
    result = _healthz_with(DATABASE_URL=f"postgres://postgres@{socket_dir}/aios")

    assert result == {
        "status": 503,
        "body": {
            "database": "unavailable",
            "redis": "ok",
            "workers": 0,
            "detail": "database unavailable",
        },
    }
