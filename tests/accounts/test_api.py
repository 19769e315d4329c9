from __future__ import annotations

import pytest

from aios_site.accounts.models import ApiToken, Role
from aios_site.accounts.services import membership_ensure, token_create, token_revoke

pytestmark = pytest.mark.django_db


def _token_for(user, workspace, name="test") -> str:
    membership = user.memberships.get(workspace=workspace)
    return token_create(membership=membership, name=name)[1]


def _bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_a_token_identifies_its_owner_and_only_its_workspace(
    client, owner, workspace, other_workspace
):
    membership_ensure(workspace=other_workspace, user=owner, role=Role.VIEWER)
    raw = _token_for(owner, workspace)

    response = client.get("/api/v1/me", **_bearer(raw))

    assert response.status_code == 200
    assert response.json() == {
        "email": "alice@shop.example",
        "workspaces": [{"slug": "alice", "name": "Alice's Shop", "role": "owner"}],
    }


def test_a_session_sees_every_workspace_of_the_person(client, owner, workspace, other_workspace):
    membership_ensure(workspace=other_workspace, user=owner, role=Role.VIEWER)
    client.force_login(owner)

    response = client.get("/api/v1/me")

    assert response.json()["workspaces"] == [
        {"slug": "alice", "name": "Alice's Shop", "role": "owner"},
        {"slug": "bob", "name": "Bob's Shop", "role": "viewer"},
    ]


def test_a_token_cannot_reach_another_workspace_of_the_same_person(
    client, owner, workspace, other_workspace
):
    membership_ensure(workspace=other_workspace, user=owner, role=Role.OWNER)
    raw = _token_for(owner, workspace)

    response = client.get("/api/v1/workspaces/bob", **_bearer(raw))

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/workspaces/alice",
        "/api/v1/workspaces/alice/members",
        "/api/v1/workspaces/alice/tokens",
    ],
)
def test_an_outsider_gets_404_for_every_workspace_endpoint(
    client, owner, outsider, other_workspace, path
):
    raw = _token_for(outsider, other_workspace)

    assert client.get(path, **_bearer(raw)).status_code == 404
    client.force_login(outsider)
    assert client.get(path).status_code == 404


def test_an_outsider_cannot_revoke_a_token_of_another_workspace(
    client, owner, workspace, outsider, other_workspace
):
    victim = token_create(membership=owner.memberships.get(), name="victim")[0]
    raw = _token_for(outsider, other_workspace)

    response = client.delete(f"/api/v1/workspaces/bob/tokens/{victim.pk}", **_bearer(raw))

    assert response.status_code == 404
    victim.refresh_from_db()
    assert victim.revoked_at is None


def test_a_member_lists_members_with_roles(client, owner, operator, viewer):
    client.force_login(viewer)

    response = client.get("/api/v1/workspaces/alice/members")

    assert response.json() == [
        {"email": "alice@shop.example", "role": "owner"},
        {"email": "olivia@shop.example", "role": "operator"},
        {"email": "victor@shop.example", "role": "viewer"},
    ]


def test_creating_a_token_returns_it_once_and_stores_only_a_digest(client, operator):
    raw = _token_for(operator, operator.memberships.get().workspace)

    response = client.post(
        "/api/v1/workspaces/alice/tokens",
        {"name": "store sync"},
        content_type="application/json",
        **_bearer(raw),
    )

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "store sync" and body["owner"] == "olivia@shop.example"
    assert body["token"].startswith("aios_") and body["prefix"] == body["token"][:12]
    stored = ApiToken.objects.get(pk=body["id"])
    assert body["token"] not in {stored.digest, stored.prefix, stored.name}
    assert client.get("/api/v1/me", **_bearer(body["token"])).status_code == 200


def test_a_member_sees_only_their_own_tokens_and_an_owner_sees_all(
    client, owner, operator, workspace
):
    token_create(membership=owner.memberships.get(), name="owner's")
    token_create(membership=operator.memberships.get(), name="operator's")

    client.force_login(operator)
    assert [t["name"] for t in client.get("/api/v1/workspaces/alice/tokens").json()] == [
        "operator's"
    ]
    client.force_login(owner)
    assert {t["name"] for t in client.get("/api/v1/workspaces/alice/tokens").json()} == {
        "owner's",
        "operator's",
    }


def test_a_revoked_token_is_refused(client, owner, workspace):
    membership = owner.memberships.get()
    token, raw = token_create(membership=membership, name="old")
    token_revoke(token=token)

    response = client.get("/api/v1/me", **_bearer(raw))

    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}


def test_a_token_stops_working_when_its_membership_is_removed(client, operator, workspace):
    raw = _token_for(operator, workspace)
    operator.memberships.all().delete()

    assert client.get("/api/v1/me", **_bearer(raw)).status_code == 401


@pytest.mark.parametrize(
    "header", ["", "Bearer ", "Bearer nonsense", "Bearer aios_forged", "Basic abc"]
)
def test_missing_or_bad_credentials_get_401_json(client, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}

    response = client.get("/api/v1/me", **extra)

    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}


def test_a_session_post_without_csrf_is_refused(owner):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)

    response = client.post(
        "/api/v1/workspaces/alice/tokens", {"name": "x"}, content_type="application/json"
    )

    assert response.status_code == 403
    assert "detail" in response.json()
    assert not ApiToken.objects.exists()


def test_invalid_input_gets_422_with_detail(client, owner, workspace):
    raw = _token_for(owner, workspace)

    response = client.post(
        "/api/v1/workspaces/alice/tokens",
        {"name": ""},
        content_type="application/json",
        **_bearer(raw),
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "payload", "name"]


def test_malformed_json_gets_a_4xx_with_detail(client, owner, workspace):
    raw = _token_for(owner, workspace)

    response = client.post(
        "/api/v1/workspaces/alice/tokens",
        "{not json",
        content_type="application/json",
        **_bearer(raw),
    )

    assert 400 <= response.status_code < 500
    assert "detail" in response.json()


def test_an_unknown_api_path_is_json_404(client):
    response = client.get("/api/v1/no-such-thing")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/v1/openapi.json")

    assert schema.status_code == 200
    assert "/api/v1/healthz" in schema.json()["paths"]
    assert client.get("/api/v1/docs").status_code == 200


def test_a_viewer_can_read_the_workspace_and_sees_their_role(client, viewer, workspace):
    client.force_login(viewer)

    assert client.get("/api/v1/workspaces/alice").json() == {
        "slug": "alice",
        "name": "Alice's Shop",
        "role": "viewer",
    }


@pytest.mark.parametrize(
    "path", ["/api/v1/workspaces/alice/tokens", "/api/v1/workspaces/alice/members"]
)
def test_list_endpoints_use_a_fixed_number_of_queries(
    client, owner, workspace, django_assert_num_queries, path
):
    from tests.factories import MembershipFactory

    for n in range(5):
        member = MembershipFactory(workspace=workspace, user__username=f"m{n}@shop.example")
        token_create(membership=member, name=f"t{n}")
    raw = _token_for(owner, workspace)

    # token lookup, last-used update, membership, the list itself: no query per row
    with django_assert_num_queries(4):
        response = client.get(path, **_bearer(raw))
    assert len(response.json()) >= 6
