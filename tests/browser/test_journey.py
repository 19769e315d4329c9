"""The demo, end to end, as the owner sees it in Chromium: a product with a thin description
arrives by webhook, the catalog writer's proposal appears on the board without a reload, the
owner rewrites the text and approves it, the shop receives that text once; then the run
behind the card, its trace and its replay, the memory it recalled, and the metrics."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from tests.agents.conftest import wait_for_run
from tests.browser.test_catalog import intents, shop  # noqa: F401 - fixtures
from tests.browser.test_shell import _log_in
from tests.catalog.conftest import store  # noqa: F401 - a fixture
from tests.catalog.test_pipelines import PRODUCT

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EDITED = "Soft cotton, cut for every day, and it keeps its shape wash after wash."


def test_the_demo_journey_from_a_webhook_to_the_metrics(page, web_server, worker, owner, shop):  # noqa: F811
    _log_in(page, web_server, "alice@shop.example")
    expect(page).to_have_url(f"{web_server}/w/alice/board/")
    expect(page.locator("#live-status")).to_have_text("● live")
    expect(page.locator("#no-cards")).to_be_visible()

    # A signed webhook reaches the server; the card appears on the open board by itself.
    page.evaluate("window.unreloaded = true")  # gone if the page were loaded again
    assert shop.send_webhook("products/create", PRODUCT) == 200
    card = page.locator("article.card")
    expect(card).to_have_count(1, timeout=60_000)
    assert page.evaluate("window.unreloaded") is True
    expect(card).to_contain_text("New description for Example T-Shirt in English")
    expect(card).to_contain_text("Example T-Shirt")
    expect(card.locator(".badge.pending")).to_be_visible()
    card = page.locator(f"#{card.get_attribute('id')}")

    # The owner rewrites the English description and approves the edit.
    card.get_by_text("Edit", exact=True).click()
    editor = card.get_by_role("textbox", name="Description in English")
    expect(editor).to_contain_text("Example T-Shirt")  # the draft is what the editor holds
    editor.fill(EDITED)
    card.get_by_role("button", name="Approve as edited").click()

    expect(card.locator(".badge.committed")).to_be_visible(timeout=30_000)
    expect(card.locator(".changes")).to_be_hidden()  # decided: it left the waiting list
    expect(page.locator(".caught-up")).to_be_visible()
    page.get_by_role("link", name="Done").click()  # where the card is kept, in full
    card = page.locator(f"#cards-committed #{card.get_attribute('id')}")
    assert _as_it_reads_now(card.locator(".change .diff-text").first) == EDITED
    expect(card).to_contain_text("edited before approval")
    assert len(shop.writes) == 1
    assert EDITED in shop.writes[0]["body"]["product"]["body_html"]

    # The run behind the card, its steps and its trace.
    card.get_by_text("Where this comes from").click()
    run_link = card.get_by_role("link", name="how the agent worked")
    run_id = int(run_link.get_attribute("data-run"))
    wait_for_run(run_id, "succeeded")  # it resumes after the commit, to record the decision
    run_link.click()
    expect(page.get_by_role("heading", name=f"Run #{run_id}")).to_be_visible()
    expect(page.locator("#run-status")).to_have_text("succeeded")
    steps = page.locator(".checkpoint summary strong")
    expect(steps).to_have_text(["1. start", "2. draft", "3. propose", "4. done"])
    start, fact = page.locator(".checkpoint").first, f"products/product:{PRODUCT['id']}"
    start.locator("summary").first.click()
    recall = start.locator("details.call", has=page.locator("a", has_text=fact))
    recall.locator("summary").click()
    expect(recall.get_by_role("link", name=f"{fact} v1")).to_be_visible()

    page.get_by_role("link", name="OpenTelemetry spans (JSON)").click()
    trace = json.loads(page.locator("body").inner_text())
    spans = trace["resourceSpans"][0]["scopeSpans"][0]["spans"]
    names = [span["name"] for span in spans]
    assert names[0] == "run catalog.describe_product"
    assert {"key": "aios.run.id", "value": {"intValue": str(run_id)}} in spans[0]["attributes"]
    steps = [name for name in names if name.startswith("step ")]
    assert steps == ["step start", "step draft", "step propose", "step done"]
    assert names.count("memory recall") == 2
    assert "proposal catalog.update_description" in names
    page.go_back()

    # Replay: the journal served again, and the verdict on the new run's page.
    page.get_by_role("button", name="Replay").click()
    expect(page.locator("dt:text-is('Replay of') + dd")).to_have_text(f"#{run_id}")
    expect(page.locator("#replay-verdict")).to_have_text("identical", timeout=30_000)

    # Memory: the product fact the run recalled, and "used by" back to the run.
    page.get_by_role("link", name="Memory", exact=True).click()
    page.get_by_role("link", name=fact).click()
    # The shop's new text made a new version; the run recalled the first one.
    expect(page.locator("h1")).to_have_text(re.compile(rf"^{fact} v2 current"))
    expect(page.locator("dl.facts")).to_contain_text(EDITED)
    back = page.get_by_role("link", name=f"#{run_id}", exact=True)
    recalled_by = page.locator("#used-by tr", has=back)
    expect(recalled_by).to_contain_text("Catalog writer")
    expect(recalled_by.locator("td").nth(3)).to_have_text("v1")
    recalled_by.get_by_role("link").click()
    expect(page.get_by_role("heading", name=f"Run #{run_id}")).to_be_visible()

    # Metrics: the approved description is a task done today.
    page.get_by_role("link", name="Metrics", exact=True).click()
    expect(page.locator("#kpi-tasks .kpi-figure")).to_have_text("1")  # not the replay
    expect(page.locator("#kpi-tasks")).to_contain_text("1 change committed")
    expect(page.locator("#kpi-automated")).to_contain_text("against 1 a person approved")
    expect(page.locator("#agent-catalog-writer td").nth(1)).to_have_text("1")
    bar = page.locator("#chart-minutes svg rect.chart-bar")
    expect(bar).to_have_count(1)
    assert float(bar.get_attribute("height")) > 0

    page.get_by_role("link", name="Catalog", exact=True).click()
    expect(page.locator("tr", has_text="Example T-Shirt")).to_contain_text("written")


def _as_it_reads_now(diff) -> str:
    """A word diff's text without its deletions: the text as it reads after the change."""
    text = diff.evaluate(
        "el => { const c = el.cloneNode(true); c.querySelectorAll('del').forEach(d => d.remove());"
        " return c.textContent; }"
    )
    return " ".join(text.split())
