"""The curation console: browse with filters, history with diffs, actions, bulk, import, used by."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.services import run_start
from memory.models import MemoryImport, MemoryItem
from memory.services import embed_pending, memory_import_advance
from tests.agents.conftest import drive
from tests.memory.test_memory import IMPORT, fact

pytestmark = pytest.mark.django_db

PAGE = "/w/alice/memory/"


def _queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries)


def test_the_list_page_costs_the_same_queries_for_3_items_as_for_40(operator_client, workspace):
    for i in range(3):
        fact(workspace, f"Fact {i}.", key=f"k{i}", source=IMPORT)
    few = _queries(operator_client, PAGE)
    for i in range(3, 40):
        fact(workspace, f"Fact {i}.", key=f"k{i}", source=IMPORT)

    assert _queries(operator_client, PAGE) == few
    assert _queries(operator_client, PAGE + "?state=all&kind=fact&source=import") == few


def test_filters_narrow_the_list_and_an_htmx_filter_gets_only_the_table(operator_client, workspace):
    fact(workspace, "Returns within 30 days.", key="returns")
    fact(workspace, "Ships from Lisbon.", key="origin", namespace="shipping")
    fact(workspace, "Returns never accepted.", key="returns", source=IMPORT)

    page = operator_client.get(PAGE, {"namespace": "shipping"}).content.decode()
    review = operator_client.get(
        PAGE, {"state": "needs_review"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="item-table"
    ).content.decode()

    assert "shipping/origin" in page and "policies/returns" not in page
    assert "1 item contradicts what memory holds and waits for a decision." in page
    assert review.lstrip().startswith('<div id="item-table">')
    assert "Returns never accepted." in review and "Returns within 30 days." not in review
    assert "needs review" in review and "<h1>" not in review


def test_content_is_escaped_on_the_list_and_item_pages(operator_client, workspace):
    item = fact(workspace, '<script>alert("x")</script> Returns in 30 days.', key="returns")

    for path in (PAGE, f"{PAGE}items/{item.pk}/"):
        page = operator_client.get(path).content.decode()
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert" in page


def test_editing_a_fact_on_its_page_writes_a_version_and_shows_the_diff(operator_client, workspace):
    item = fact(workspace, "Returns are accepted within 30 days.", key="returns")

    response = operator_client.post(
        f"{PAGE}items/{item.pk}/edit/",
        {"content": "Returns are accepted within 60 days."},
        follow=True,
    )

    newer = MemoryItem.objects.get(version=2)
    assert response.redirect_chain[-1][0] == f"{PAGE}items/{newer.pk}/"
    page = response.content.decode()
    assert "Saved as version 2." in page
    assert "<del>30</del><ins>60</ins>" in page
    assert newer.source_kind == "human" and newer.source_ref == "olivia@shop.example"


def test_a_contradiction_is_accepted_from_its_page(operator_client, workspace):
    fact(workspace, "Returns are accepted within 30 days.", key="returns")
    claimed = fact(workspace, "Returns are never accepted.", key="returns", source=IMPORT)

    page = operator_client.get(f"{PAGE}items/{claimed.pk}/").content.decode()
    operator_client.post(f"{PAGE}items/{claimed.pk}/accept/")

    assert "contradicts the current one (v1)" in page
    claimed.refresh_from_db()
    assert claimed.status == "current"


def test_delete_from_the_item_page_hides_every_version(operator_client, workspace):
    item = fact(workspace, "Returns are accepted within 30 days.", key="returns")

    operator_client.post(f"{PAGE}items/{item.pk}/delete/")

    assert not MemoryItem.objects.filter(deleted_at__isnull=True).exists()
    assert "policies/returns" in operator_client.get(PAGE, {"state": "deleted"}).content.decode()


def test_bulk_pin_from_the_list(operator_client, workspace):
    one, two = fact(workspace, "A.", key="a"), fact(workspace, "B.", key="b")

    response = operator_client.post(
        f"{PAGE}bulk/", {"action": "pin", "ids": [one.pk, two.pk], "back": "state=current"}
    )

    assert response["Location"] == f"{PAGE}?state=current"
    assert MemoryItem.objects.filter(pinned=True).count() == 2


def test_a_viewer_sees_memory_but_has_no_actions_and_cannot_post_them(client, viewer, workspace):
    item = fact(workspace, "Returns are accepted within 30 days.", key="returns")
    client.force_login(viewer)

    page = client.get(f"{PAGE}items/{item.pk}/").content.decode()

    assert "Returns are accepted" in page and "Expire now" not in page
    assert 'name="ids"' not in client.get(PAGE).content.decode()
    assert client.post(f"{PAGE}items/{item.pk}/expire/").status_code == 403
    assert client.post(f"{PAGE}bulk/", {"action": "delete", "ids": [item.pk]}).status_code == 403


def test_an_outsider_cannot_see_an_item_page(outsider_client, workspace):
    item = fact(workspace, "Returns are accepted within 30 days.", key="returns")

    assert outsider_client.get(f"{PAGE}items/{item.pk}/").status_code == 404
    assert outsider_client.get(f"/w/bob/memory/items/{item.pk}/").status_code == 404


def test_an_import_shows_a_progress_row_that_stops_polling_when_done(operator_client):
    upload = SimpleUploadedFile("notes.jsonl", b'{"content": "Call the supplier."}\n')

    operator_client.post(f"{PAGE}import/", {"file": upload, "namespace": "notes", "kind": "note"})

    job = MemoryImport.objects.get()
    page = operator_client.get(PAGE).content.decode()
    assert re.search(rf'<tr id="import-{job.pk}" hx-get="[^"]+" hx-trigger="every 1s"', page)
    memory_import_advance(import_id=job.pk)
    row = operator_client.get(f"{PAGE}imports/{job.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in row and 'value="1"' in row and ">done<" in row


def test_a_bad_import_says_why_on_the_page_and_imports_nothing(operator_client):
    upload = SimpleUploadedFile("bad.jsonl", b'{"namespace": "notes"}\n')

    response = operator_client.post(f"{PAGE}import/", {"file": upload}, follow=True)

    assert "Not imported: nothing was imported: line 1: kind: Field required" in (
        response.content.decode()
    )
    assert MemoryImport.objects.count() == 0


def test_the_item_page_lists_the_runs_that_recalled_it_and_the_run_links_back(
    operator_client, workspace, make_agent
):
    item = fact(workspace, "Returns are accepted within 30 days of delivery.", key="returns")
    embed_pending()
    run = drive(run_start(agent=make_agent("demo.recall"), input={"query": "returns"})[0])

    page = operator_client.get(f"{PAGE}items/{item.pk}/").content.decode()

    assert f'href="/w/alice/runs/{run.pk}/">#{run.pk}</a>' in page
    assert item.citations.get().run_id == run.pk
    trace = operator_client.get(f"/w/alice/runs/{run.pk}/").content.decode()
    assert (
        f'Recalled: <a href="{PAGE}items/{item.pk}/"><code>policies/returns</code> v1</a>' in trace
    )


def test_recall_from_the_page_shows_scores_and_why(operator_client, workspace):
    fact(workspace, "Returns are accepted within 30 days of delivery.", key="returns")
    embed_pending()

    page = operator_client.get(PAGE, {"recall": "how long do I have to send it back"}).content
    assert "policies/returns" in page.decode() and "meaning #1" in page.decode()


def test_staff_browse_memory_in_the_admin_and_its_delete_is_soft(admin_client, workspace):
    item = fact(workspace, "Returns are accepted within 30 days.", key="returns")
    fact(workspace, "Returns within 60 days.", key="returns")

    listed = admin_client.get("/admin/memory/memoryitem/?q=returns").content.decode()
    change = admin_client.get(f"/admin/memory/memoryitem/{item.pk}/change/")
    admin_client.post(
        "/admin/memory/memoryitem/", {"action": "forget", "_selected_action": [item.pk]}
    )

    assert "policies/returns v1" in listed and "policies/returns v2" in listed
    assert change.status_code == 200 and "Returns are accepted" in change.content.decode()
    assert MemoryItem.objects.count() == 2
    assert not MemoryItem.objects.filter(deleted_at__isnull=True).exists()
    assert admin_client.get("/admin/memory/memoryimport/").status_code == 200
    assert admin_client.get("/admin/memory/memorycitation/").status_code == 200


def test_the_list_pages_by_50_and_keeps_the_filters_in_the_pager_links(operator_client, workspace):
    for i in range(55):
        fact(workspace, f"Fact {i}.", key=f"k{i}", source=IMPORT)

    first = operator_client.get(PAGE, {"kind": "fact", "page": "1"}).content.decode()
    second = operator_client.get(PAGE, {"kind": "fact", "page": "2"}).content.decode()

    assert first.count('name="ids"') == 50 and second.count('name="ids"') == 5
    assert 'href="?kind=fact&page=2">Older</a>' in first
    assert "page 2 of 2 · 55 items" in second
