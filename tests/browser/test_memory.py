"""The memory console in Chromium: import a file and watch its progress, review a contradiction
it brought, filter the list, edit a fact and read the diff."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from memory.models import MemoryItem
from tests.browser.test_shell import _log_in
from tests.memory.test_memory import fact

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_imports_reviews_filters_and_edits_memory(
    page, web_server, worker, operator, workspace, tmp_path
):
    fact(workspace, "Returns are accepted within 30 days of delivery.", key="returns")
    rows = [{"key": f"sku-{n}", "content": f"Product {n} is organic cotton."} for n in range(600)]
    rows.append({"namespace": "policies", "key": "returns", "content": "No returns, ever."})
    upload = tmp_path / "catalog.jsonl"
    upload.write_text("\n".join(json.dumps(row) for row in rows))
    _log_in(page, web_server, "olivia@shop.example")

    page.goto(f"{web_server}/w/alice/memory/")
    page.get_by_label("JSONL or CSV file").set_input_files(str(upload))
    page.get_by_label("Namespace for rows without one").fill("products")
    page.get_by_label("Kind for rows without one").select_option("fact")
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_text("Importing 601 items from catalog.jsonl.")).to_be_visible()
    progress = page.get_by_label("import catalog.jsonl")
    expect(progress).to_be_attached()
    row = page.locator("#imports tr").first
    expect(row).to_contain_text("done", timeout=60_000)  # polled until the worker finished
    expect(row).to_contain_text("600 written · 0 unchanged · 1 to review")
    assert progress.get_attribute("value") == "601"

    page.get_by_label("State").select_option("needs_review")
    expect(page.locator("#item-table")).to_contain_text("No returns, ever.")
    expect(page.locator("#item-table")).not_to_contain_text("Product 1 ")
    assert "state=needs_review" in page.url  # the filter is in the address, to share or reload
    page.get_by_role("link", name="policies/returns").click()
    expect(page.locator("#curate")).to_contain_text("contradicts the current one (v1)")
    page.get_by_role("button", name="Reject").click()
    expect(page.get_by_text("Done.")).to_be_visible()

    current = MemoryItem.objects.get(key="returns", version=1)
    page.goto(f"{web_server}/w/alice/memory/items/{current.pk}/")
    page.locator("form.edit textarea").fill("Returns are accepted within 60 days of delivery.")
    page.get_by_role("button", name="Save as v3").click()
    expect(page.get_by_text("Saved as version 3.")).to_be_visible()
    expect(page.locator("#version-3 ins")).to_have_text("60")
    expect(page.locator("#version-3 del")).to_have_text("30")
    assert MemoryItem.objects.filter(key="returns", status="current").count() == 2  # v1 closed
