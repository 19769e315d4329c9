"""What is refused before any view runs is refused the same way on every page and API call."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

# Lists and pages that filter by a query parameter in the database; psycopg refused the NUL
# only as the answer was written (a 500), or as the page's query ran.
FILTERED_PAGES = [
    "/w/alice/memory/?q=linen%00",
    "/w/alice/memory/?namespace=%00",
    "/w/alice/runs/?agent=%00",
    "/w/alice/board/?agent=%00",
]
FILTERED_LISTS = ["/api/v1/webhook-events?topic=%00", "/api/v1/runs?agent=a%00b"]


@pytest.mark.parametrize("path", FILTERED_PAGES)
def test_a_nul_in_a_query_parameter_is_a_400_page_saying_so(owner_client, path):
    response = owner_client.get(path)

    assert response.status_code == 400
    assert "a query parameter holds a NUL character" in response.content.decode()


@pytest.mark.parametrize("path", FILTERED_LISTS)
def test_a_nul_in_a_query_parameter_is_a_400_with_a_json_detail(owner_client, path):
    response = owner_client.get(path)

    assert response.status_code == 400
    assert response.json() == {"detail": "a query parameter holds a NUL character"}


def test_a_nul_in_a_parameter_name_is_refused_too(owner_client):
    assert owner_client.get("/w/alice/memory/?q%00=linen").status_code == 400
