"""Deployment: Django's deploy checks pass with the production environment the README gives
(and fail without it); health probes are answered over plain HTTP; every page and form
refuses a POST without the CSRF token, and every page with htmx writes sends the token.
(Websocket origin and membership checks are in test_consumers.py.)"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys

import pytest
from django.test import Client
from django.urls import URLPattern, get_resolver

from tests.site.test_every_endpoint import _changed, _rows
from tests.site.test_every_page import PREFIX, ROUTES, _url, objects  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db

PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "aios_site.settings.base",
    "AIOS_DEBUG": "false",
    "AIOS_SECRET_KEY": secrets.token_urlsafe(50),
    "AIOS_ALLOWED_HOSTS": "shop.example.com",
    "AIOS_CSRF_TRUSTED_ORIGINS": "https://shop.example.com",
    "AIOS_HTTPS": "true",
    "AIOS_BEHIND_PROXY": "true",
}
# The site's routes outside a workspace (the API is covered in test_every_endpoint.py; the
# admin is Django's own).
SITE_ROUTES = [
    str(p.pattern)
    for p in get_resolver().url_patterns
    if isinstance(p, URLPattern) and not str(p.pattern).startswith(PREFIX)
]
HTMX_WRITE = re.compile(r"\shx-(?:post|put|patch|delete)=")


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env={**os.environ, **PRODUCTION, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# -- production settings ----------------------------------------------------------------------


def test_the_deploy_checks_pass_with_the_production_environment():
    checked = _manage("check", "--deploy", "--fail-level", "WARNING")

    assert checked.returncode == 0, checked.stderr
    assert "System check identified no issues (0 silenced)." in checked.stdout


def test_the_production_environment_turns_on_https_cookies_hsts_and_the_proxy_header():
    shown = _manage(
        "shell",
        "-c",
        "from django.conf import settings as s; import json; print(json.dumps({"
        "'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, 'session': s.SESSION_COOKIE_SECURE, "
        "'csrf': s.CSRF_COOKIE_SECURE, 'redirect': s.SECURE_SSL_REDIRECT, "
        "'hsts': s.SECURE_HSTS_SECONDS, 'proxy': s.SECURE_PROXY_SSL_HEADER}))",
    )

    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout.strip().splitlines()[-1]) == {
        "debug": False,
        "hosts": ["shop.example.com"],
        "session": True,
        "csrf": True,
        "redirect": True,
        "hsts": 31536000,
        "proxy": ["HTTP_X_FORWARDED_PROTO", "https"],
    }


@pytest.mark.parametrize(
    ("change", "warnings"),
    [
        ({"AIOS_HTTPS": "false"}, {"security.W004", "security.W008", "security.W012"}),
        ({"AIOS_SECRET_KEY": "short"}, {"security.W009"}),
        ({"AIOS_DEBUG": "true"}, {"security.W018"}),
    ],
    ids=["plain HTTP", "a weak secret key", "debug on"],
)
def test_the_deploy_checks_fail_without_each_production_setting(change, warnings):
    checked = _manage("check", "--deploy", "--fail-level", "WARNING", **change)

    assert checked.returncode != 0
    assert warnings <= set(re.findall(r"\((security\.W\d+)\)", checked.stderr)), checked.stderr


def test_a_health_probe_over_plain_http_is_answered_and_a_page_is_redirected(settings):
    settings.SECURE_SSL_REDIRECT = True  # what AIOS_HTTPS=true sets
    client = Client()

    health = client.get("/api/v1/healthz")
    page = client.get("/login/")

    assert health.status_code in {200, 503} and "database" in health.json()
    assert page.status_code == 301 and page["Location"] == "https://testserver/login/"


# -- CSRF ---------------------------------------------------------------------------------------


def test_every_page_refuses_a_post_without_the_csrf_token(owner, objects):  # noqa: F811
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    before = _rows()

    change = {"reason": "x", "content": "x", "slug": "alice"}  # what a change would send

    answers = {route: client.post(_url(route, objects), change) for route in ROUTES + SITE_ROUTES}

    accepted = {
        route: answer.status_code
        for route, answer in answers.items()
        if answer.status_code != 403 or b"CSRF verification failed" not in answer.content
    }
    assert not accepted, accepted
    assert not _changed(before, _rows())
    assert {"login/", "logout/", "workspaces/switch/"} <= set(SITE_ROUTES)


def test_every_page_with_htmx_writes_sends_a_working_csrf_token(owner, objects):  # noqa: F811
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    with_writes, failures = [], []

    for route in ROUTES:
        page = client.get(_url(route, objects))
        html = page.content.decode()
        if page.status_code != 200 or "<body" not in html:
            continue
        if _tokenless_forms(html):
            failures.append(f"{route}: a POST form without the token")
        if re.search(r"hx-(?:disinherit|inherit)=", html):
            failures.append(f"{route}: a part of the page may not inherit the body's hx-headers")
        if not HTMX_WRITE.search(html):
            continue
        with_writes.append(route)
        token = _body_token(html)
        if token is None:
            failures.append(f"{route}: htmx writes, and no X-CSRFToken in the body's hx-headers")
            continue
        # The token the page hands htmx is one the server takes.
        switched = client.post("/workspaces/switch/", {"slug": "alice"}, HTTP_X_CSRFTOKEN=token)
        if switched.status_code != 302:
            failures.append(f"{route}: its token was refused ({switched.status_code})")

    assert not failures, failures
    assert {
        "w/<slug:slug>/board/",
        "w/<slug:slug>/settings/",
        "w/<slug:slug>/catalog/",
        "w/<slug:slug>/content/briefs/<int:brief_id>/",
    } <= set(with_writes)


def _body_token(html: str) -> str | None:
    body = re.search(r"<body[^>]*\shx-headers='([^']*)'", html)
    return json.loads(body.group(1)).get("X-CSRFToken") if body else None


def _tokenless_forms(html: str) -> list[str]:
    forms = re.findall(r"<form\b[^>]*>.*?</form>", html, flags=re.DOTALL | re.IGNORECASE)
    return [
        form
        for form in forms
        if re.search(r"method=[\"']post[\"']", form, flags=re.IGNORECASE)
        and 'name="csrfmiddlewaretoken"' not in form
    ]
