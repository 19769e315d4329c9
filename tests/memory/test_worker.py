"""Memory with real Celery workers: embeddings after write, imports that survive a killed worker."""

from __future__ import annotations

import pytest

from memory.models import MemoryImport, MemoryItem
from memory.services import memory_import_start
from tests.agents.processes import start_beat, start_worker
from tests.helpers import wait_until
from tests.memory.test_memory import fact

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_written_item_is_found_by_words_at_once_and_gets_its_vector_from_a_worker(workspace):
    from memory.selectors import recall

    item = fact(workspace, "Returns are accepted within 30 days of delivery.", key="returns")
    found = recall(workspace_id=workspace.pk, query="returns accepted")
    assert [(r["key"], r["why"]["vector_rank"]) for r in found] == [("returns", None)]

    worker = start_worker()
    try:
        wait_until(lambda: MemoryItem.objects.filter(pk=item.pk, embedding__isnull=False).exists())
    finally:
        worker.stop()

    [hit] = recall(workspace_id=workspace.pk, query="how long can I send an item back?")
    assert hit["key"] == "returns" and hit["why"]["vector_rank"] == 1


def test_an_import_whose_worker_is_killed_is_resumed_and_writes_every_row_once(workspace, owner):
    rows = "\n".join(
        f'{{"key": "sku-{n}", "content": "Product {n} is made of organic cotton, size {n % 7}."}}'
        for n in range(1500)
    )
    job = memory_import_start(
        workspace=workspace,
        user=owner,
        filename="catalog.jsonl",
        data=rows.encode(),
        namespace="products",
        kind="fact",
    )
    first = start_worker()
    beat = start_beat()
    try:
        wait_until(lambda: MemoryImport.objects.get(pk=job.pk).done >= 200)
        first.kill()  # SIGKILL mid-import: its message is never acknowledged
        stopped_at = MemoryImport.objects.get(pk=job.pk).done
        second = start_worker()
        try:
            wait_until(lambda: MemoryImport.objects.get(pk=job.pk).status == "done", timeout=120)
        finally:
            second.stop()
    finally:
        beat.stop()
        first.stop()

    done = MemoryImport.objects.get(pk=job.pk)
    assert 0 < stopped_at < 1500
    assert (done.done, done.created, done.unchanged, done.skipped) == (1500, 1500, 0, 0)
    assert MemoryItem.objects.filter(namespace="products").count() == 1500
    assert set(MemoryItem.objects.values_list("version", flat=True)) == {1}
