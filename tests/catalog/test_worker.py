"""Webhooks with a real Celery worker: answered at once, processed in the background."""

from __future__ import annotations

import pytest

from catalog.models import Product, WebhookEvent
from tests.agents.processes import start_worker
from tests.catalog.test_webhooks import _deliver, _payload
from tests.helpers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_delivery_is_answered_then_processed_by_a_worker(client, store):
    worker = start_worker()
    try:
        response = _deliver(client, "products/create", _payload("products-create.json"))
        assert response.status_code == 200
        wait_until(lambda: WebhookEvent.objects.get().status == "processed", timeout=30)
    finally:
        worker.stop()

    assert Product.objects.get().title == "Example T-Shirt"
