"""The Evals page: an operator starts an eval with a form, everyone in the workspace reads
the scorecard and the per-message table, two evals compare side by side; nothing of another
workspace is reachable, and what a model wrote is shown as text."""

from __future__ import annotations

import pytest

from agents.evals import runner
from agents.models import EvalRun

pytestmark = pytest.mark.django_db


def _scored(workspace, limit=3) -> EvalRun:
    started = runner.eval_start(workspace=workspace, dataset="support-messages", limit=limit)
    return runner.eval_execute(eval_run_id=started.pk, limit=limit)


def test_a_viewer_sees_no_form_and_cannot_start_an_eval(shop, viewer_client):
    page = viewer_client.get("/w/alice/evals/")
    assert page.status_code == 200 and b'name="dataset"' not in page.content

    refused = viewer_client.post("/w/alice/evals/new/", {"dataset": "support-messages"})

    assert refused.status_code == 403 and EvalRun.objects.count() == 0


def test_an_operator_starts_an_eval_from_the_form_and_watches_it_score(
    shop, workspace, operator_client, django_capture_on_commit_callbacks
):
    page = operator_client.get("/w/alice/evals/")
    assert page.status_code == 200
    assert b'name="dataset"' in page.content and b"This machine only" in page.content

    with django_capture_on_commit_callbacks() as queued:
        started = operator_client.post("/w/alice/evals/new/", {"dataset": "support-messages"})
    created = EvalRun.objects.get()
    assert started.status_code == 302 and started["Location"] == f"/w/alice/evals/{created.pk}/"
    assert len(queued) == 1  # the eval's task, sent once the row is committed
    running = operator_client.get(f"/w/alice/evals/{created.pk}/")
    assert b"Running: 0 of 177 scored" in running.content
    assert b'hx-trigger="every 2s"' in running.content


def test_a_bad_dataset_or_provider_is_said_on_the_page_and_starts_nothing(shop, operator_client):
    response = operator_client.post(
        "/w/alice/evals/new/", {"dataset": "support-messages", "provider": "nope"}, follow=True
    )

    assert b"Could not start the eval: no provider named" in response.content
    assert EvalRun.objects.count() == 0


def test_the_scorecard_and_each_message_are_shown_and_two_evals_compare(
    shop, workspace, viewer_client
):
    first, second = _scored(workspace), _scored(workspace)

    page = viewer_client.get(f"/w/alice/evals/{first.pk}/?compare={second.pk}")

    text = page.content.decode()
    assert page.status_code == 200
    assert "Would have gone out without you" in text and "Intent right" in text
    for item in ("en-001", "en-002", "en-003"):
        assert item in text
    assert text.count("the local tier alone") >= 2  # both columns
    assert "Would wait for you" in text
    listing = viewer_client.get("/w/alice/evals/").content.decode()
    assert f"/w/alice/evals/{first.pk}/" in listing and f"/w/alice/evals/{second.pk}/" in listing


def test_another_workspaces_eval_is_not_found(shop, workspace, outsider_client):
    done = _scored(workspace, limit=1)

    assert outsider_client.get("/w/alice/evals/").status_code in (403, 404)
    assert outsider_client.get(f"/w/alice/evals/{done.pk}/").status_code in (403, 404)


def test_a_draft_with_markup_is_shown_as_text(shop, workspace, viewer_client):
    done = _scored(workspace, limit=1)
    done.results.update(draft='<script>alert("x")</script><img src=x onerror=alert(1)>')

    page = viewer_client.get(f"/w/alice/evals/{done.pk}/").content.decode()

    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert" in page


def test_the_policy_page_shows_what_each_rule_would_have_sent_and_how_rightly(
    shop, workspace, owner_client
):
    from approvals.models import PolicyRule
    from approvals.policy import DEFAULT_RULES

    before = owner_client.get("/w/alice/settings/policy/").content.decode()
    assert "Run an eval" in before
    for position, rule in enumerate(DEFAULT_RULES, start=1):
        PolicyRule.objects.create(workspace=workspace, position=position, **rule)
    PolicyRule.objects.create(
        workspace=workspace,
        position=len(DEFAULT_RULES) + 1,
        name="Send every reply",
        effector="catalog.send_reply",
        conditions=[],
        decision="auto_approve",
    )
    _scored(workspace, limit=40)

    from approvals.selectors import rule_measures
    from approvals.services import rules_for

    measured = rule_measures(workspace_id=workspace.pk, rules=rules_for(workspace_id=workspace.pk))
    by_name = dict(
        zip(
            [r["name"] for r in rules_for(workspace_id=workspace.pk)],
            measured["rules"],
            strict=True,
        )
    )
    templated = by_name["Templated order-status replies go out by themselves"]
    everything = by_name["Send every reply"]
    assert templated["sent"] >= 1 and templated["right"] == templated["sent"]
    # Alone, the permissive rule lets out much more (the gate still holds risky and failed
    # drafts), and much of it wrongly.
    assert everything["sent"] > templated["sent"] and everything["right"] < everything["sent"]
    assert by_name["Everything else waits for a person"] is None
    assert by_name["Notes in memory are low risk"] is None  # no note among the eval's cards
    page = owner_client.get("/w/alice/settings/policy/").content.decode()
    assert "Measured on the eval of" in page
    sent, right = templated["sent"], templated["right"]
    assert f"Would have sent {sent}, {right} rightly (100 %)" in page
    assert f"Would have sent {everything['sent']}, {everything['right']} rightly" in page
