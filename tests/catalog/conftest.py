"""Fixtures of the catalog tests."""

from __future__ import annotations

import pytest

from approvals.audit import Actor
from catalog.services import store_connect

SHOP = "alice-shop.myshopify.com"
OLD_SECRET, NEW_SECRET = "old-secret-0123456789", "new-secret-0123456789"


@pytest.fixture
def store(workspace):
    return store_connect(
        workspace=workspace,
        shop_domain=SHOP,
        access_token="shpat_x",
        webhook_secrets=[NEW_SECRET, OLD_SECRET],
        actor=Actor("user", "test"),
    )
