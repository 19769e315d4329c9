"""Bad input and abuse (issue 17, points 22 and 23): logins are throttled per account and
per address, and the API refuses input it cannot use with a 422 naming the field, never a
500 or an HTML page."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from agents.models import Agent, Run
from aios_site.accounts.services import token_create
from approvals.models import AuditEntry
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

ALICE = "alice@shop.example"


def _login(client: Client, username: str, password: str, address: str = "203.0.113.7"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# -- 22. login throttling ---------------------------------------------------------------------


def test_twenty_wrong_passwords_in_a_row_lock_the_account_out_even_for_the_right_one(owner):
    client = Client()
    answers = [_login(client, ALICE, f"guess {n}").status_code for n in range(20)]

    assert answers[: settings.AXES_FAILURE_LIMIT - 1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert set(answers[settings.AXES_FAILURE_LIMIT :]) == {429}
    right = _login(client, ALICE, PASSWORD)
    assert right.status_code == 429
    assert "Too many failed logins" in right.content.decode()
    assert "try again in 15 minutes" in right.content.decode()
    assert not _signed_in(client)


def test_a_locked_out_account_logs_in_again_once_it_has_cooled_off(owner):
    from axes.models import AccessAttempt

    client = Client()
    for n in range(settings.AXES_FAILURE_LIMIT):
        _login(client, ALICE, f"guess {n}")
    assert _login(client, ALICE, PASSWORD).status_code == 429

    long_ago = timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    AccessAttempt.objects.update(attempt_time=long_ago)

    assert _login(client, ALICE, PASSWORD).status_code == 302
    assert _signed_in(client)


def test_the_account_stays_locked_when_the_guesses_come_from_other_addresses(owner):
    for n in range(settings.AXES_FAILURE_LIMIT):
        _login(Client(), ALICE, f"guess {n}", address=f"198.51.100.{n + 1}")

    assert _login(Client(), ALICE, PASSWORD, address="192.0.2.200").status_code == 429


def test_another_account_from_another_address_still_logs_in_during_a_lockout(owner, outsider):
    for n in range(20):
        _login(Client(), ALICE, f"guess {n}")

    bob = Client()
    response = _login(bob, "bob@shop.example", PASSWORD, address="192.0.2.99")

    assert response.status_code == 302
    assert _signed_in(bob)


def test_an_address_that_guesses_many_accounts_is_locked_out(owner, outsider):
    client = Client()
    for n in range(settings.AXES_FAILURE_LIMIT):
        _login(client, f"person{n}@shop.example", "guess")

    assert _login(client, "bob@shop.example", PASSWORD).status_code == 429


def test_a_lockout_is_recorded_once_in_the_audit_log_of_the_accounts_workspace(owner, owner_client):
    for n in range(20):
        _login(Client(), ALICE, f"guess {n}")

    entries = AuditEntry.objects.filter(workspace__slug="alice", action="login.locked_out")
    assert entries.count() == 1
    entry = entries.get()
    assert (entry.object_type, entry.object_label) == ("user", ALICE)
    assert "203.0.113.7" in entry.reason
    page = owner_client.get("/w/alice/audit/").content.decode()
    assert "login.locked_out" in page and "login throttle" in page


def test_the_owner_sees_lockouts_in_the_admin(owner, admin_client):
    for n in range(settings.AXES_FAILURE_LIMIT):
        _login(Client(), ALICE, f"guess {n}")

    page = admin_client.get("/admin/axes/accessattempt/")

    assert page.status_code == 200
    assert ALICE in page.content.decode()


def test_a_locked_out_json_login_answers_429_with_a_detail(owner):
    client = Client()
    for n in range(settings.AXES_FAILURE_LIMIT):
        _login(client, ALICE, f"guess {n}")

    response = client.post(
        "/login/",
        {"username": ALICE, "password": PASSWORD},
        REMOTE_ADDR="203.0.113.7",
        HTTP_ACCEPT="application/json",
    )

    assert response.status_code == 429
    assert "Too many failed logins" in response.json()["detail"]


# -- 23. input the API cannot use -------------------------------------------------------------


@pytest.fixture
def api(owner):
    _, raw = token_create(membership=owner.memberships.get(), name="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def _post(api: Client, path: str, body) -> object:
    text = body if isinstance(body, str) else json.dumps(body)
    return api.post(path, text, content_type="application/json")


def _locs(response) -> list[list]:
    return [problem["loc"] for problem in response.json()["detail"]]


def test_a_run_whose_input_lacks_a_declared_field_is_refused_with_422_naming_it(api, make_agent):
    make_agent("catalog.describe_product", slug="describe")

    response = _post(api, "/api/v1/runs", {"agent": "describe", "input": {}})

    assert response.status_code == 422
    assert ["body", "payload", "input", "product_id"] in _locs(response)
    assert not Run.objects.exists()


def test_a_run_whose_input_field_has_the_wrong_type_is_refused_with_422(api, make_agent):
    make_agent("catalog.inventory_alert", slug="stock")

    response = _post(api, "/api/v1/runs", {"agent": "stock", "input": {"variant_id": "seven"}})

    assert response.status_code == 422
    assert ["body", "payload", "input", "variant_id"] in _locs(response)


def test_a_run_with_the_declared_input_is_created(api, make_agent):
    make_agent("demo.slow", slug="slow")

    response = _post(api, "/api/v1/runs", {"agent": "slow", "input": {"key": "k", "seconds": 0}})

    assert response.status_code == 201


def test_an_agent_may_not_allow_an_effector_that_does_not_exist(api):
    body = {"slug": "x", "name": "X", "pipeline": "demo.propose"}

    created = _post(api, "/api/v1/agents", {**body, "allowed_effectors": ["core.nope"]})

    assert created.status_code == 422
    assert "core.nope" in json.dumps(created.json()["detail"])
    assert not Agent.objects.filter(slug="x").exists()


def test_an_agent_update_may_not_allow_an_effector_that_does_not_exist(api, make_agent):
    make_agent("demo.propose", slug="proposer", allowed_effectors=["core.note"])

    response = api.patch(
        "/api/v1/agents/proposer",
        json.dumps({"allowed_effectors": ["core.note", "shop.burn_it_down"]}),
        content_type="application/json",
    )

    assert response.status_code == 422
    assert "shop.burn_it_down" in json.dumps(response.json()["detail"])
    assert Agent.objects.get(slug="proposer").allowed_effectors == ["core.note"]


@pytest.mark.parametrize(
    "path,body",
    [
        ("/api/v1/runs", '{"agent": "echo", "input": {"text": "\\ud800"}}'),
        ("/api/v1/runs", '{"agent": "\\udfff"}'),
        ("/api/v1/agents", '{"slug": "x", "name": "\\ud800", "pipeline": "demo.echo"}'),
        ("/api/v1/workspaces/alice/tokens", '{"name": "a\\ud83d"}'),
    ],
)
def test_a_lone_surrogate_in_any_string_of_a_body_is_a_422(api, make_agent, path, body):
    make_agent("demo.echo", slug="echo")

    response = _post(api, path, body)

    assert response.status_code == 422
    assert "surrogate" in json.dumps(response.json()["detail"])


@pytest.mark.parametrize(
    "method,path",
    [("delete", "/api/v1/runs"), ("put", "/api/v1/agents"), ("patch", "/api/v1/me")],
)
def test_a_method_the_api_does_not_offer_is_a_json_405_with_a_detail(api, method, path):
    response = getattr(api, method)(path)

    assert response.status_code == 405
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]
