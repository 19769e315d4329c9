from __future__ import annotations

import os
import secrets
import subprocess
import sys

from django.conf import settings

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "aios_site.settings.base",
    "AIOS_DEBUG": "false",
    "AIOS_SECRET_KEY": secrets.token_urlsafe(50),
    "AIOS_HTTPS": "true",
    "AIOS_ALLOWED_HOSTS": "shop.example.com",
}


def test_check_deploy_is_clean_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env={**os.environ, **PRODUCTION_ENV},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_celery_is_configured_for_long_tasks():
    assert settings.CELERY_TASK_ACKS_LATE is True
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST is True
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert visibility > settings.CELERY_TASK_TIME_LIMIT > settings.CELERY_TASK_SOFT_TIME_LIMIT


def test_the_celery_app_routes_to_the_three_queues():
    from aios_site.celery import app

    assert [q.name for q in app.conf.task_queues] == ["interactive", "default", "bulk"]
    assert app.conf.task_default_queue == "default"
