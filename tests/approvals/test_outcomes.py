"""Business outcomes: the metrics arithmetic on a known set of events, the review time of a
decision, rejection categories, the minutes a workspace sets, the metrics API and page."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import CostEntry, Run
from agents.services import agent_create
from approvals.models import AuditEntry, Proposal, ProposalOpened
from approvals.outcomes import outcome_metrics, outcome_window, review_seconds
from approvals.services import payload_hash, proposal_approve
from tests.approvals.test_board import _propose
from tests.memory.test_api import Api

pytestmark = pytest.mark.django_db

BOARD = "/w/alice/board/"
METRICS = "/w/alice/metrics/"
NOVEMBER = {"since": "2026-11-01", "until": "2026-11-03"}
FAILED_CHECKS = [
    {"check": "facts", "language": "en", "ok": False, "detail": "not in the facts: colour 'red'"},
    {"check": "length", "language": "en", "ok": True, "detail": "80 words"},
]


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of November 2026."""
    return timezone.make_aware(datetime(2026, 11, day, hour, minute))


def _agent(workspace, slug: str, pipeline: str, name: str = ""):
    return agent_create(
        workspace=workspace, slug=slug, name=name or slug.title(), pipeline=pipeline
    )


def _run(agent, *, status="succeeded", finished=None, trigger="manual", spend=()) -> Run:
    run = Run.objects.create(
        workspace=agent.workspace,
        agent=agent,
        status=status,
        current_step="done",
        trigger=trigger,
        finished_at=finished,
    )
    for when, tier, cost in spend:
        entry = CostEntry.objects.create(
            workspace=agent.workspace, agent=agent, run=run, model="m", tier=tier, cost=cost
        )
        CostEntry.objects.filter(pk=entry.pk).update(created_at=when)
    return run


def _proposal(run, effector, *, created, decision, status, risk="medium", **fields) -> Proposal:
    payload = fields.pop("payload", {"n": run.pk})
    proposal = Proposal.objects.create(
        workspace=run.workspace,
        agent=run.agent,
        run=run,
        seq=1,
        step="propose",
        effector=effector,
        target=f"t-{run.pk}",
        payload=payload,
        proposed_payload=payload,
        payload_hash=payload_hash(payload),
        risk=risk,
        decision=decision,
        status=status,
        **fields,
    )
    Proposal.objects.filter(pk=proposal.pk).update(created_at=created)
    return proposal


@pytest.fixture
def events(workspace, other_workspace, owner, operator):
    """Three days of a shop's agents, times and spend chosen by hand, and a description worth
    20 minutes in this shop instead of the 15 its effector says. Bob's shop did things too."""
    workspace.outcome_minutes = {"catalog.update_description": 20}
    workspace.save()
    writer = _agent(workspace, "writer", "catalog.describe_product")
    support = _agent(workspace, "support", "catalog.reply_to_customer")
    watcher = _agent(workspace, "watcher", "catalog.inventory_alert")

    # Nov 1: a description the owner approved after 2 minutes on its card, 4 after it was
    # proposed (its run spent 0.10); a reply the policy approved (0.02); an alert raised.
    r1 = _run(writer, spend=[(at(1, 9), "remote", Decimal("0.10")), (at(1, 9), "template", 0)])
    _proposal(r1, "catalog.update_description", created=at(1, 9), decision="require_approval",
              status="committed", decided_by=owner, decided_at=at(1, 9, 4), review_seconds=120,
              committed_at=at(1, 9, 5))  # fmt: skip
    r2 = _run(support, spend=[(at(1, 10), "remote", Decimal("0.02"))])
    _proposal(r2, "catalog.send_reply", created=at(1, 10), decision="auto_approve", risk="low",
              status="committed", decided_at=at(1, 10), committed_at=at(1, 10, 1))  # fmt: skip
    _run(watcher, finished=at(1, 12))
    # Nov 2: a draft whose fact check failed, rejected as wrong facts after 10 minutes on its
    # card; a reply the policy denied; a low-risk reply the operator approved through the
    # API 30 minutes after it was proposed, never having opened it (0.04).
    r3 = _run(writer)
    _proposal(r3, "catalog.update_description", created=at(2, 8), decision="require_approval",
              status="rejected", decided_by=owner, decided_at=at(2, 8, 10), review_seconds=600,
              reject_category="wrong_facts", payload={"checks": FAILED_CHECKS})  # fmt: skip
    r4 = _run(support)
    _proposal(r4, "catalog.send_reply", created=at(2, 9), decision="deny", status="rejected",
              decided_at=at(2, 9))  # fmt: skip
    r5 = _run(support, spend=[(at(2, 10), "remote", Decimal("0.04"))])
    _proposal(r5, "catalog.send_reply", created=at(2, 10), decision="require_approval",
              risk="low", status="committed", decided_by=operator, decided_at=at(2, 10, 30),
              committed_at=at(2, 10, 31))  # fmt: skip
    # Nov 3: spend only. A run still going (0.05); a replay, which calls nothing, and a change
    # that was undone are no tasks.
    _run(writer, status="running", spend=[(at(3, 8), "remote", Decimal("0.05"))])
    _run(watcher, finished=at(3, 9), trigger="replay", spend=[(at(3, 9), "local", 0)])
    undone = _run(writer)
    _proposal(undone, "catalog.update_description", created=at(3, 9), decision="auto_approve",
              status="rolled_back", decided_at=at(3, 9), committed_at=at(3, 9))  # fmt: skip
    # Oct 31, outside the period.
    _run(watcher, finished=at(1, 0) - timedelta(seconds=1))
    # Bob's shop, the same days: a reply the policy approved (9.00) and an alert.
    bob = _agent(other_workspace, "bob-support", "catalog.reply_to_customer")
    rb = _run(bob, spend=[(at(1, 10), "remote", Decimal("9"))])
    _proposal(rb, "catalog.send_reply", created=at(1, 10), decision="auto_approve",
              status="committed", decided_at=at(1, 10), committed_at=at(1, 10))  # fmt: skip
    _run(_agent(other_workspace, "bob-watcher", "catalog.inventory_alert"), finished=at(1, 11))
    return {"writer": writer, "support": support, "watcher": watcher}


def _metrics(workspace, agent=None) -> dict:
    window = outcome_window(since=date(2026, 11, 1), until=date(2026, 11, 3))
    return outcome_metrics(workspace=workspace, window=window, agent=agent)


# -- the arithmetic ---------------------------------------------------------------------------


def test_the_totals_of_a_known_set_of_events_are_exact(workspace, events):
    totals = _metrics(workspace)["totals"]

    assert totals == {
        "tasks_completed": 4,  # a description, two replies, an alert
        "proposals_committed": 3,
        "runs_without_proposals": 1,
        "automated": 1,
        "human_approved": 2,
        "automated_share": 0.3333,
        "low_risk_automated": 1,
        "low_risk_human_approved": 1,
        "low_risk_automated_share": 0.5,
        "minutes_replaced": 36.0,  # 20 (this shop's figure) + 6 + 6 + 4
        "review_minutes": 12.0,  # 2 + 10; the API decision has none
        "minutes_saved": 24.0,
        "policy_denials": 1,
        "rejections": {
            "wrong_facts": 1,
            "off_brand": 0,
            "not_needed": 0,
            "too_risky": 0,
            "other": 0,
        },
        "rejected": 1,
        "failed_checks": 1,
        "errors_prevented": 2,  # the rejected draft whose check failed counts once
        "human_decisions": 3,
        "turnaround_p50_seconds": 600.0,  # of 4, 10 and 30 minutes
        "turnaround_p90_seconds": 1560.0,  # 10 min + 0.8 x 20 min
        "cost_per_outcome": {
            "description": {
                "count": 1,
                "spend": Decimal("0.100000"),
                "per_outcome": Decimal("0.100000"),
            },
            "message": {
                "count": 2,
                "spend": Decimal("0.060000"),
                "per_outcome": Decimal("0.030000"),
            },
            "post": {"count": 0, "spend": Decimal("0.000000"), "per_outcome": None},
        },
        "spend": Decimal("0.210000"),
        "spend_by_tier": {
            "local": Decimal("0.000000"),
            "remote": Decimal("0.210000"),
            "template": Decimal("0.000000"),
        },
    }


def test_each_day_and_each_agent_gets_its_own_share_of_the_figures(workspace, events):
    metrics = _metrics(workspace)

    days = [
        (d["day"], d["tasks_completed"], d["minutes_saved"], d["spend"]) for d in metrics["days"]
    ]
    agents = [
        (a["agent"], a["tasks_completed"], a["minutes_saved"], a["turnaround_p50_seconds"])
        for a in metrics["agents"]
    ]
    assert days == [
        (date(2026, 11, 1), 3, 28.0, Decimal("0.120000")),  # 20 + 6 + 4 - 2
        (date(2026, 11, 2), 1, -4.0, Decimal("0.040000")),  # 6 replaced, 10 reviewing
        (date(2026, 11, 3), 0, 0.0, Decimal("0.050000")),
    ]
    assert agents == [
        ("support", 2, 12.0, 1800.0),
        ("watcher", 1, 4.0, None),
        ("writer", 1, 8.0, 420.0),  # 20 - 2 - 10 minutes; p50 of 4 and 10 minutes
    ]


def test_one_agents_metrics_leave_the_other_agents_out(workspace, events):
    totals = _metrics(workspace, agent=events["support"])["totals"]

    assert (totals["tasks_completed"], totals["policy_denials"], totals["spend"]) == (
        2,
        1,
        Decimal("0.060000"),
    )
    assert totals["cost_per_outcome"]["description"]["count"] == 0


def test_another_workspaces_events_are_never_counted(other_workspace, events):
    totals = _metrics(other_workspace)["totals"]

    assert (totals["tasks_completed"], totals["spend"], totals["minutes_saved"]) == (
        2,
        Decimal("9.000000"),
        10.0,  # its reply (6) and its alert (4) at the classes' figures
    )


def test_a_review_counts_from_opening_to_deciding_but_never_past_the_cap():
    opened = at(1, 9)

    assert review_seconds(opened_at=opened, decided_at=at(1, 9, 3), cap_seconds=600) == 180
    assert review_seconds(opened_at=opened, decided_at=at(1, 11), cap_seconds=600) == 600
    assert review_seconds(opened_at=opened, decided_at=opened, cap_seconds=600) == 0


# -- review time and rejection categories ---------------------------------------------------


@pytest.fixture
def waiting_for_all(owner, client):
    """Rules under which every note waits for a person."""
    rule = {"name": "Everything waits", "effector": "*", "decision": "require_approval"}
    Api(client, owner).send("put", "/policy-rules", {"rules": [rule]})


def _opened_ago(proposal, user, seconds: float) -> None:
    ProposalOpened.objects.filter(proposal=proposal, user=user).update(
        opened_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_the_board_notes_who_opened_a_card_and_the_decision_keeps_its_review_time(
    operator_client, operator, viewer, proposer, waiting_for_all
):
    proposal = _propose(proposer, "Call the supplier.")
    viewer_client = Client()
    viewer_client.force_login(viewer)

    operator_client.get(BOARD)
    assert not ProposalOpened.objects.exists()  # on a screen is not yet looked at
    viewer_client.post(f"{BOARD}{proposal.pk}/opened/")  # refused: a viewer cannot decide
    operator_client.post(f"{BOARD}{proposal.pk}/opened/")  # the board saw them turn to it
    operator_client.post(f"{BOARD}{proposal.pk}/opened/")  # the first time stays
    opened = list(ProposalOpened.objects.values_list("user", flat=True))
    _opened_ago(proposal, operator, 90)
    operator_client.post(
        f"{BOARD}{proposal.pk}/reject/", {"reason": "not this week", "category": "not_needed"}
    )

    rejected = Proposal.objects.get()
    assert opened == [operator.pk]  # not the viewer, who cannot decide it
    assert (rejected.status, rejected.reason, rejected.reject_category) == (
        "rejected",
        "not this week",
        "not_needed",
    )
    assert 90 <= rejected.review_seconds <= 92
    assert (
        "not needed · “not this week”"
        in operator_client.get(BOARD, {"tab": "rejected"}).content.decode()
    )


def test_a_card_left_open_longer_than_the_cap_counts_the_cap(
    operator, settings, proposer, waiting_for_all
):
    settings.AIOS_REVIEW_CAP_MINUTES = 10
    proposal = _propose(proposer, "Call the supplier.")
    ProposalOpened.objects.create(
        proposal=proposal, user=operator, opened_at=timezone.now() - timedelta(minutes=25)
    )

    approved = proposal_approve(
        proposal=proposal, membership=operator.memberships.get(), shown_hash=proposal.payload_hash
    )

    assert approved.review_seconds == 600


def test_cards_approved_together_share_the_time_spent_on_the_board(
    operator_client, operator, proposer, waiting_for_all
):
    first, second = _propose(proposer, "A.", key="a"), _propose(proposer, "B.", key="b")
    for proposal in (first, second):
        operator_client.post(f"{BOARD}{proposal.pk}/opened/")
        _opened_ago(proposal, operator, 180)

    operator_client.post(
        f"{BOARD}approve-selected/",
        {"selected": [f"{p.pk}:{p.payload_hash}" for p in (first, second)]},
    )

    shares = sorted(Proposal.objects.values_list("review_seconds", flat=True))
    assert all(90 <= share <= 91 for share in shares), shares  # not 3 minutes each


def test_a_card_the_operator_turns_to_counts_as_opened(
    client, operator, viewer, proposer, waiting_for_all
):
    proposal = _propose(proposer, "Call the supplier.")
    client.force_login(viewer)
    refused = client.post(f"{BOARD}{proposal.pk}/opened/")
    client.force_login(operator)

    response = client.post(f"{BOARD}{proposal.pk}/opened/", HTTP_HX_REQUEST="true")

    assert (refused.status_code, response.status_code) == (403, 204)
    assert list(ProposalOpened.objects.values_list("user", flat=True)) == [operator.pk]


def test_an_unknown_rejection_category_is_refused_on_the_card(
    operator_client, proposer, waiting_for_all
):
    proposal = _propose(proposer, "Call the supplier.")

    card = operator_client.post(
        f"{BOARD}{proposal.pk}/reject/", {"category": "bored"}, HTTP_HX_REQUEST="true"
    ).content.decode()

    assert "unknown rejection category &#x27;bored&#x27;" in card
    assert Proposal.objects.get().status == "pending"


def test_the_api_rejects_with_a_category_and_a_decision_never_opened_has_no_review_time(
    client, operator, proposer, waiting_for_all
):
    api = Api(client, operator)
    one, two, three = (_propose(proposer, f"{n}.", key=n) for n in ("a", "b", "c"))

    rejected = api.send("post", f"/proposals/{one.pk}/reject", {"category": "too_risky"})
    plain = api.send("post", f"/proposals/{two.pk}/reject", {"reason": "no"})
    unknown = api.send("post", f"/proposals/{three.pk}/reject", {"category": "bored"})
    bulk = api.send(
        "post",
        "/proposals/bulk",
        {
            "action": "reject",
            "category": "off_brand",
            "items": [{"id": three.pk, "payload_hash": three.payload_hash}],
        },
    )

    assert rejected.status_code == 200
    assert {k: rejected.json()[k] for k in ("status", "reject_category", "review_seconds")} == {
        "status": "rejected",
        "reject_category": "too_risky",
        "review_seconds": None,
    }
    assert plain.json()["reject_category"] == "other"
    assert unknown.status_code == 422
    assert bulk.json()["done"] == [three.pk]
    assert Proposal.objects.get(pk=three.pk).reject_category == "off_brand"


# -- the API ----------------------------------------------------------------------------------


def test_the_outcomes_api_gives_totals_and_series_per_day_and_agent(client, viewer, events):
    response = Api(client, viewer).get("/metrics/outcomes", **NOVEMBER)

    assert response.status_code == 200
    body = response.json()
    assert (body["since"], body["until"], body["agent"]) == ("2026-11-01", "2026-11-03", None)
    assert body["totals"]["minutes_saved"] == 24.0
    assert body["totals"]["cost_per_outcome"]["message"] == {
        "count": 2,
        "spend": "0.060000",
        "per_outcome": "0.030000",
    }
    assert [(d["day"], d["minutes_saved"]) for d in body["days"]] == [
        ("2026-11-01", 28.0),
        ("2026-11-02", -4.0),
        ("2026-11-03", 0.0),
    ]
    assert [(a["agent"], a["tasks_completed"]) for a in body["agents"]] == [
        ("support", 2),
        ("watcher", 1),
        ("writer", 1),
    ]
    one = Api(client, viewer).get("/metrics/outcomes", agent="writer", **NOVEMBER).json()
    assert (one["agent"], [a["agent"] for a in one["agents"]]) == ("writer", ["writer"])


def test_the_outcomes_api_refuses_a_backwards_or_too_long_range_and_an_unknown_agent(
    client, viewer, events
):
    api = Api(client, viewer)

    backwards = api.get("/metrics/outcomes", since="2026-11-05", until="2026-11-01")
    too_long = api.get("/metrics/outcomes", since="2025-01-01", until="2026-01-02")
    a_leap_year = api.get("/metrics/outcomes", since="2024-01-01", until="2024-12-31")
    unknown = api.get("/metrics/outcomes", agent="nobody")

    assert (backwards.status_code, backwards.json()) == (
        400,
        {"detail": "since (2026-11-05) is after until (2026-11-01)"},
    )
    assert (too_long.status_code, too_long.json()) == (
        400,
        {"detail": "the range covers 367 days; ask for 366 at most"},
    )
    assert a_leap_year.status_code == 200
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "Not Found"})


def test_an_outsider_gets_404_for_the_metrics_page_and_its_own_figures_from_the_api(
    outsider_client, outsider, events
):
    page = outsider_client.get(METRICS)
    api = outsider_client.get("/api/v1/metrics/outcomes", {"workspace": "alice", **NOVEMBER})
    own = Api(outsider_client, outsider).get("/metrics/outcomes", **NOVEMBER).json()

    assert (page.status_code, api.status_code) == (404, 404)
    assert (own["totals"]["tasks_completed"], own["totals"]["spend"]) == (2, "9.000000")
    assert [a["agent"] for a in own["agents"]] == ["bob-support", "bob-watcher"]


# -- the page ---------------------------------------------------------------------------------


def test_the_metrics_page_shows_the_figures_and_draws_a_bar_per_day(owner_client, events):
    events["writer"].name = '<script>alert("x")</script>Writer'
    events["writer"].save()

    page = owner_client.get(METRICS, NOVEMBER).content.decode()

    assert '<strong class="kpi-figure">4</strong>' in page  # tasks completed
    assert '<strong class="kpi-figure">33 %</strong>' in page  # share automated
    assert '<strong class="kpi-figure">24 min</strong>' in page  # time saved
    assert '<strong class="kpi-figure">10 min</strong>' in page  # turnaround p50
    assert "1 rejected by people, 1 wrong facts" in page
    assert "per published description (1); per resolved message 0.0300 (2)" in page
    minutes_chart = page[page.index('id="chart-minutes"') : page.index('id="chart-spend"')]
    assert "<svg" in minutes_chart
    bars = re.findall(
        r'<rect class="chart-bar( negative)?"[^>]*data-day="([^"]+)" data-value="([^"]+)"',
        minutes_chart,
    )
    assert bars == [("", "2026-11-01", "28"), (" negative", "2026-11-02", "-4")]
    spend_chart = page[page.index('id="chart-spend"') : page.index('id="chart-automated"')]
    assert re.findall(r'<g data-day="([^"]+)" data-value="([^"]+)"', spend_chart) == [
        ("2026-11-01", "0.12"),
        ("2026-11-02", "0.04"),
        ("2026-11-03", "0.05"),
    ]
    assert "<script>alert" not in page and "&lt;script&gt;alert(&quot;x&quot;)" in page


def test_the_metrics_page_filters_with_an_htmx_partial(owner_client, events):
    response = owner_client.get(
        METRICS,
        {**NOVEMBER, "agent": "support"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="metrics-body",
    )

    body = response.content.decode()
    assert body.lstrip().startswith('<div id="metrics-body"')
    assert "<h1>" not in body and 'id="minutes"' not in body
    assert 'href="/w/alice/metrics/?since=' in body and 'hx-get="/w/alice/metrics/?since=' in body
    assert '<strong class="kpi-figure">2</strong>' in body  # support's tasks
    assert owner_client.get(METRICS, {"agent": "nobody"}).status_code == 404


def test_a_bad_date_on_the_page_says_so_and_shows_the_last_30_days(owner_client, events):
    page = owner_client.get(METRICS, {"since": "yesterday"}).content.decode()

    assert "Showing the last 30 days instead: since: &#x27;yesterday&#x27; is not a date" in page


def test_a_period_without_outcomes_says_what_will_appear(owner_client):
    page = owner_client.get(METRICS).content.decode()

    assert 'id="metrics-empty"' in page and "Nothing to measure in this period yet." in page
    assert "<svg" not in page
    assert "catalog.update_description" in page  # the minutes can be set before anything ran


def test_a_viewer_sees_the_minutes_but_cannot_change_them(client, viewer, workspace):
    client.force_login(viewer)

    page = client.get(METRICS).content.decode()
    refused = client.post(f"{METRICS}minutes/", {"minutes:catalog.send_reply": "9"})

    assert "Only an owner changes these." in page and 'name="minutes:' not in page
    assert refused.status_code == 403
    workspace.refresh_from_db()
    assert workspace.outcome_minutes == {}


def test_the_owner_sets_the_minutes_of_a_kind_of_work_and_a_bad_figure_changes_nothing(
    owner_client, workspace
):
    saved = owner_client.post(
        f"{METRICS}minutes/",
        {"minutes:catalog.update_description": "20", "minutes:catalog.send_reply": ""},
        follow=True,
    )
    too_many = owner_client.post(
        f"{METRICS}minutes/", {"minutes:catalog.send_reply": "601"}, follow=True
    )
    unknown = owner_client.post(f"{METRICS}minutes/", {"minutes:nothing.here": "3"}, follow=True)

    workspace.refresh_from_db()
    assert workspace.outcome_minutes == {"catalog.update_description": 20.0}
    assert "Saved the minutes." in saved.content.decode()
    assert 'name="minutes:catalog.update_description" value="20.0"' in saved.content.decode()
    assert "Not saved: catalog.send_reply: minutes go from 0 to 600" in too_many.content.decode()
    assert "Not saved: nothing.here: no effector or pipeline has this name" in (
        unknown.content.decode()
    )
    entry = AuditEntry.objects.get(action="outcome_minutes.update")
    assert (entry.before, entry.after) == ({}, {"catalog.update_description": 20.0})


def test_the_metrics_page_costs_the_same_queries_for_a_quiet_period_as_a_busy_one(
    owner_client, workspace, events
):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert owner_client.get(METRICS, NOVEMBER).status_code == 200
        return len(captured)

    quiet = queries()
    for n in range(8):
        agent = _agent(workspace, f"more-{n}", "catalog.reply_to_customer")
        run = _run(agent, spend=[(at(3, n), "remote", Decimal("0.01"))])
        _proposal(run, "catalog.send_reply", created=at(3, n), decision="auto_approve",
                  status="committed", decided_at=at(3, n), committed_at=at(3, n))  # fmt: skip
        _run(agent, finished=at(2, n))

    assert queries() == quiet
