"""The memory API: write, versions, change, delete, search, bulk, review, import, tenancy."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from memory.models import MemoryEdit, MemoryImport, MemoryItem
from memory.services import Source, embed_pending, memory_import_advance, memory_write
from tests.memory.test_memory import IMPORT, fact

pytestmark = pytest.mark.django_db

RETURNS = "Returns are accepted within 30 days of delivery."


@pytest.fixture
def api(client, operator):
    return Api(client, operator)


class Api:
    """A client holding a member's bearer token."""

    def __init__(self, client, user):
        from aios_site.accounts.services import token_create

        self.client = client
        raw = token_create(membership=user.memberships.get(), name="t")[1]
        self.auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}

    def get(self, path, **params):
        return self.client.get(f"/api/v1{path}", params, **self.auth)

    def send(self, method, path, body=None):
        return getattr(self.client, method)(
            f"/api/v1{path}", json.dumps(body or {}), content_type="application/json", **self.auth
        )

    def upload(self, name, content: bytes, **fields):
        upload = SimpleUploadedFile(name, content)
        return self.client.post("/api/v1/memory/import", {"file": upload, **fields}, **self.auth)


def _write(api, **body):
    return api.send("post", "/memory", {"namespace": "policies", "kind": "fact", **body})


def test_an_operator_writes_a_fact_and_reads_it_back_as_the_current_version(api):
    response = _write(api, key="returns", content=RETURNS, metadata={"topic": "returns"})

    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("namespace", "key", "version", "kind", "status", "outcome")} == {
        "namespace": "policies",
        "key": "returns",
        "version": 1,
        "kind": "fact",
        "status": "current",
        "outcome": "created",
    }
    assert body["source"]["kind"] == "human" and body["language"] == "en"
    assert body["embedded"] is False and body["metadata"] == {"topic": "returns"}
    current = api.get("/memory/policies/returns").json()
    assert (current["id"], current["content"]) == (body["id"], RETURNS)


def test_writing_the_same_fact_again_answers_200_and_adds_nothing(api):
    first = _write(api, key="returns", content=RETURNS).json()
    again = _write(api, key="returns", content=RETURNS)

    assert again.status_code == 200
    assert (again.json()["id"], again.json()["outcome"]) == (first["id"], "unchanged")
    assert MemoryItem.objects.count() == 1


def test_patching_a_fact_writes_version_two_and_versions_lists_both(api):
    _write(api, key="returns", content=RETURNS)

    patched = api.send("patch", "/memory/policies/returns", {"content": "Returns: 60 days."})

    assert patched.status_code == 200
    assert (patched.json()["version"], patched.json()["outcome"]) == (2, "created")
    versions = api.get("/memory/policies/returns/versions").json()
    assert [(v["version"], v["content"]) for v in versions] == [
        (2, "Returns: 60 days."),
        (1, RETURNS),
    ]
    assert versions[1]["valid_until"] == versions[0]["valid_from"]
    assert versions[1]["superseded_by"] == versions[0]["id"]


def test_patching_a_note_edits_it_in_place_and_keeps_the_edit(api):
    note = _write(api, namespace="notes", kind="note", key="todo", content="Call the supplier.")

    patched = api.send("patch", "/memory/notes/todo", {"content": "Call the supplier on Monday."})

    assert (patched.json()["id"], patched.json()["version"]) == (note.json()["id"], 1)
    assert patched.json()["outcome"] == "edited"
    edit = MemoryEdit.objects.get()
    assert (edit.before, edit.after) == ("Call the supplier.", "Call the supplier on Monday.")


def test_deleting_a_key_hides_it_but_keeps_its_versions(api):
    _write(api, key="returns", content=RETURNS)

    assert api.send("delete", "/memory/policies/returns").status_code == 204

    gone = api.get("/memory/policies/returns")
    assert gone.status_code == 404
    assert gone.json() == {"detail": "no current version of policies/returns; see its /versions"}
    assert api.get("/memory", state="deleted").json()["items"][0]["key"] == "returns"
    [version] = api.get("/memory/policies/returns/versions").json()
    assert version["deleted_at"] is not None
    assert api.send("delete", "/memory/policies/returns").status_code == 404


def test_search_answers_with_scores_and_why_and_respects_the_namespace(api, workspace):
    fact(workspace, RETURNS, key="returns")
    fact(workspace, "We ship to Spain and Portugal.", key="shipping", namespace="shipping")
    embed_pending()

    found = api.get("/memory/search", q="how long can I return an item", namespace="policies")

    assert found.status_code == 200
    [hit] = found.json()
    assert (hit["key"], hit["version"], hit["kind"]) == ("returns", 1, "fact")
    assert hit["why"]["vector_rank"] == 1 and hit["score"] > 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"namespace": "Bad Space", "kind": "fact", "content": "x"}, 422),
        ({"namespace": "policies", "kind": "opinion", "content": "x"}, 422),
        ({"namespace": "policies", "kind": "fact", "content": ""}, 422),
        ({"namespace": "policies", "kind": "fact", "content": "x", "key": "a/b"}, 422),
    ],
)
def test_bad_items_are_refused_with_a_detail_and_nothing_is_stored(api, body, status):
    response = api.send("post", "/memory", body)

    assert response.status_code == status and response.json()["detail"]
    assert MemoryItem.objects.count() == 0


def test_writing_a_fact_over_a_note_is_a_conflict(api):
    _write(api, namespace="notes", kind="note", key="todo", content="Call the supplier.")

    response = _write(api, namespace="notes", kind="fact", key="todo", content="Done.")

    assert response.status_code == 409
    assert response.json() == {"detail": "notes/todo is a note, not a fact"}


def test_a_viewer_reads_but_cannot_write(client, viewer, workspace):
    fact(workspace, RETURNS, key="returns")
    api = Api(client, viewer)

    assert api.get("/memory/policies/returns").status_code == 200
    assert _write(api, content="x").status_code == 403
    assert api.send("patch", "/memory/policies/returns", {"content": "y"}).status_code == 403
    assert api.send("delete", "/memory/policies/returns").status_code == 403


def test_another_workspaces_memory_is_not_found_nor_searchable_nor_bulk_editable(
    client, outsider, workspace
):
    mine = fact(workspace, RETURNS, key="returns")
    embed_pending()
    api = Api(client, outsider)

    assert api.get("/memory/policies/returns").status_code == 404
    assert api.get("/memory/policies/returns/versions").status_code == 404
    assert api.send("patch", "/memory/policies/returns", {"content": "y"}).status_code == 404
    assert api.send("delete", "/memory/policies/returns").status_code == 404
    assert api.get("/memory/search", q=RETURNS).json() == []
    assert api.get("/memory", state="all").json()["items"] == []
    bulk = api.send("post", "/memory/bulk", {"action": "delete", "ids": [mine.pk]})
    assert bulk.json() == {
        "action": "delete",
        "changed": 0,
        "skipped": [{"id": mine.pk, "reason": "not found"}],
    }
    assert api.send("post", f"/memory/items/{mine.pk}/review", {"accept": True}).status_code == 404
    mine.refresh_from_db()
    assert mine.deleted_at is None


def test_bulk_pin_changes_each_item_and_reports_the_rest(api, workspace):
    one = fact(workspace, RETURNS, key="returns")
    two = fact(workspace, "We ship to Spain.", key="shipping")

    response = api.send("post", "/memory/bulk", {"action": "pin", "ids": [one.pk, two.pk, 999999]})

    assert response.json() == {
        "action": "pin",
        "changed": 2,
        "skipped": [{"id": 999999, "reason": "not found"}],
    }
    assert set(MemoryItem.objects.values_list("pinned", flat=True)) == {True}
    assert [i["key"] for i in api.get("/memory", pinned="true").json()["items"]] == [
        "shipping",
        "returns",
    ]


def test_a_contradiction_is_accepted_through_the_api_and_a_second_decision_conflicts(
    api, workspace
):
    fact(workspace, RETURNS, key="returns")
    claimed = fact(workspace, "Returns are never accepted.", key="returns", source=IMPORT)
    assert [i["id"] for i in api.get("/memory", state="needs_review").json()["items"]] == [
        claimed.pk
    ]

    accepted = api.send("post", f"/memory/items/{claimed.pk}/review", {"accept": True})
    again = api.send("post", f"/memory/items/{claimed.pk}/review", {"accept": False})

    assert accepted.json()["status"] == "current"
    assert api.get("/memory/policies/returns").json()["version"] == 2
    assert again.status_code == 409
    assert again.json() == {"detail": "policies/returns v2 is not waiting for review"}


def test_expire_ends_the_validity_now(api):
    _write(api, namespace="notes", kind="note", key="sale", content="Summer sale on.")

    expired = api.send("post", "/memory/notes/sale/expire")

    assert expired.json()["valid_until"] is not None
    assert api.get("/memory/notes/sale").status_code == 404
    assert [i["key"] for i in api.get("/memory", state="expired").json()["items"]] == ["sale"]


# -- import ---------------------------------------------------------------------------------


def _jsonl(*rows) -> bytes:
    return "\n".join(json.dumps(row) for row in rows).encode()


def test_a_jsonl_import_is_accepted_then_written_with_its_counts(api, workspace):
    fact(workspace, RETURNS, key="returns")
    data = _jsonl(
        {"key": "returns", "content": "Returns are never accepted."},  # contradicts: review
        {"key": "shipping", "content": "We ship to Spain and Portugal."},
        {"key": "returns-2", "kind": "note", "content": "Ask about the new policy."},
    )

    response = api.upload("policies.jsonl", data, namespace="policies", kind="fact")

    assert response.status_code == 202
    job = response.json()
    assert (job["status"], job["total"], job["done"]) == ("queued", 3, 0)
    memory_import_advance(import_id=job["id"])
    done = api.get(f"/memory/imports/{job['id']}").json()
    assert (done["status"], done["done"], done["created"]) == ("done", 3, 2)
    assert (done["needs_review"], done["unchanged"], done["skipped"]) == (1, 0, 0)
    shipping = MemoryItem.objects.get(key="shipping")
    assert (shipping.source_kind, shipping.source_ref) == ("import", "policies.jsonl")


def test_a_csv_import_keeps_unknown_columns_as_metadata(api):
    data = b"namespace,key,content,sku\nproducts,p1,Linen shirt in sand.,LS-01\n"

    job = api.upload("catalog.csv", data, kind="fact").json()
    memory_import_advance(import_id=job["id"])

    item = MemoryItem.objects.get(key="p1")
    assert (item.namespace, item.kind, item.metadata) == ("products", "fact", {"sku": "LS-01"})


def test_an_import_with_a_bad_line_is_refused_whole_with_the_line_numbers(api):
    data = b'{"content": "fine"}\nnot json\n{"content": ""}\n'

    response = api.upload("bad.jsonl", data, namespace="notes", kind="note")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "nothing was imported: line 2: not JSON (Expecting value at column 1) | "
        "line 3: content: String should have at least 1 character"
    }
    assert MemoryImport.objects.count() == 0 and MemoryItem.objects.count() == 0


def test_an_oversized_import_is_refused_with_413(api, monkeypatch):
    monkeypatch.setattr("memory.api.MAX_BYTES", 10)

    response = api.upload("big.jsonl", _jsonl({"content": "more than ten bytes"}))

    assert response.status_code == 413 and "larger than" in response.json()["detail"]
    assert MemoryImport.objects.count() == 0


def test_an_import_resumes_after_the_rows_already_written(api, monkeypatch):
    monkeypatch.setattr("memory.services.IMPORT_CHUNK", 2)
    rows = [{"key": f"k{i}", "content": f"Fact number {i}."} for i in range(5)]
    job = api.upload("five.jsonl", _jsonl(*rows), namespace="facts", kind="fact").json()
    MemoryImport.objects.filter(pk=job["id"]).update(done=2, status="running")
    for row in rows[:2]:  # what the worker that died had written with its progress
        memory_write(
            workspace=MemoryImport.objects.get().workspace,
            namespace="facts",
            kind="fact",
            source=Source("import"),
            **row,
        )

    memory_import_advance(import_id=job["id"])

    assert MemoryItem.objects.count() == 5
    assert MemoryImport.objects.get().done == 5


def test_used_by_lists_the_runs_that_recalled_the_key(api, workspace, make_agent):
    from agents.services import run_start
    from tests.agents.conftest import drive

    fact(workspace, RETURNS, key="returns")
    embed_pending()
    run = drive(run_start(agent=make_agent("demo.recall"), input={"query": "returns"})[0])

    used = api.get("/memory/policies/returns/used-by")

    assert [(u["run"], u["seq"]) for u in used.json()] == [(run.pk, 1)]
    assert api.get("/memory/policies/nothing/used-by").status_code == 404


def test_listing_costs_the_same_queries_for_3_items_as_for_30(api, workspace):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get("/memory", state="all").status_code == 200
        return len(captured)

    for i in range(3):
        fact(workspace, f"Fact {i}.", key=f"k{i}")
    embed_pending()
    queries()  # the token's first use records itself
    few = queries()
    for i in range(3, 30):
        fact(workspace, f"Fact {i}.", key=f"k{i}")
    embed_pending()

    assert queries() == few
    assert all(item["embedded"] for item in api.get("/memory").json()["items"])


def test_patching_a_notes_content_keeps_its_expiry(api):
    until = "2030-01-01T00:00:00Z"
    _write(api, namespace="notes", kind="note", key="sale", content="Sale on.", valid_until=until)

    patched = api.send("patch", "/memory/notes/sale", {"content": "Sale on, 20% off."})
    cleared = api.send("patch", "/memory/notes/sale", {"content": "Sale on.", "valid_until": None})

    assert patched.json()["valid_until"] == "2030-01-01T00:00:00Z"
    assert cleared.json()["valid_until"] is None
