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


def test_a_burst_through_daphne_is_processed_in_batches_by_the_worker(store):
    from concurrent.futures import ThreadPoolExecutor

    from tests.catalog.test_ingress import BODY, post
    from tests.helpers import web_serving

    worker = start_worker()
    try:
        with web_serving(processes=2) as (url, _farm), ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: post(url, BODY), range(60)))
            assert {status for status, _ in answers} == {200}
            wait_until(lambda: not WebhookEvent.objects.filter(status="received").exists(), 60)
    finally:
        worker.stop()

    assert WebhookEvent.objects.filter(status="processed").count() == 60
    assert Product.objects.count() == 1


def test_a_delivery_whose_batch_was_lost_is_found_by_the_sweep(client, store, monkeypatch):
    from catalog.services import webhook_sweep
    from catalog.tasks import webhook_batches

    def broker_down(event_ids):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(webhook_batches, "send", broker_down)
    response = _deliver(client, "products/create", _payload("products-create.json"))
    webhook_batches.flush()

    assert response.status_code == 200  # stored: the answer does not depend on the broker
    assert WebhookEvent.objects.get().status == "received"
    monkeypatch.undo()
    assert webhook_sweep(older_than=0) == 1
    worker = start_worker()
    try:
        wait_until(lambda: WebhookEvent.objects.get().status == "processed", timeout=30)
    finally:
        worker.stop()
    assert Product.objects.get().title == "Example T-Shirt"
