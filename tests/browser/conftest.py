"""A real daphne (`aios web`) on the test database, and real Chromium driven by Playwright.

When a browser test fails, every page it had open is saved to artifacts/screenshots/ (a
full-page PNG and the HTML), which CI keeps."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.helpers import web_serving

CHROMIUM = Path("/usr/bin/chromium")
# Without these, Chromium reaches out to Google's hosts at start, which a closed network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    # Before teardown, so the test's pages are still open.
    if report.failed and report.when in ("setup", "call") and "browser" in item.funcargs:
        save_pages(item.funcargs["browser"], name=re.sub(r"[^\w.-]+", "_", item.nodeid))
    return report


def save_pages(browser, *, name: str) -> None:
    """A full-page screenshot and the HTML of every open page, as `<name>[-n].png/.html`."""
    from playwright.sync_api import Error

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pages = [page for context in browser.contexts for page in context.pages]
    for number, page in enumerate(pages, start=1):
        stem = name if number == 1 else f"{name}-{number}"
        try:
            page.screenshot(path=SCREENSHOTS / f"{stem}.png", full_page=True, timeout=10_000)
            (SCREENSHOTS / f"{stem}.html").write_text(page.content(), encoding="utf-8")
        except Error:  # a crashed or closing page: the report of the failure matters more
            continue


@pytest.fixture(scope="module")
def web_server(django_db_setup, django_db_blocker):
    """`aios web` (two daphne processes on one socket, as `aios up` runs it) serving the test
    database, so pages, htmx and websockets are the real stack."""
    with web_serving(processes=2) as (url, _process):
        yield url


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Debian chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the fixtures' ORM calls are
    # still plain synchronous code, which Django would otherwise refuse.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="module")
def worker(django_db_setup):
    """A real Celery worker executing the runs the pages show."""
    from tests.agents.processes import start_worker

    process = start_worker()
    yield process
    process.stop()


@pytest.fixture
def watched_board(page, web_server, worker, operator, workspace, make_agent):
    """Olivia (an operator) watching the live board, where every proposal waits for a
    person; the agent that proposes notes."""
    from approvals.audit import Actor
    from approvals.services import rules_set
    from tests.browser.test_shell import _log_in

    rules_set(
        workspace=workspace,
        rules=[{"name": "Everything waits", "effector": "*", "decision": "require_approval"}],
        actor=Actor("user", "test"),
    )
    agent = make_agent("demo.propose", slug="proposer", allowed_effectors=["core.note"])
    _log_in(page, web_server, "olivia@shop.example")
    page.goto(f"{web_server}/w/alice/board/")
    expect(page.locator("#live-status")).to_have_text("● live")
    return agent
