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


@pytest.fixture
def simulator():
    """A store simulator for SHOP on a free port, with the demo catalog, the store's access
    token and its newest webhook secret."""
    from catalog.simulator import StoreSimulator

    with StoreSimulator(
        shop_domain=SHOP, webhook_secret=NEW_SECRET, access_token="shpat_x"
    ) as simulator:
        yield simulator


@pytest.fixture
def simulated_store(store, simulator):
    """`store`, its Admin API being the simulator's."""
    store.api_base_url = simulator.base_url
    store.save(update_fields=["api_base_url"])
    return store
