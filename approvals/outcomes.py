"""Business outcomes: what the agents did for one workspace, in tasks, a person's minutes,
caught mistakes, decision times and money. Reads only.

Everything is counted in SQL grouped by (day, agent); those few rows are summed into the
totals, the series per day and the series per agent. Each figure has one clock:

- a committed proposal counts on the day it was committed (undone ones do not count),
- a run that finished without proposing anything on the day it finished (replays, which
  re-execute the journal and call nothing, do not count),
- decisions (a person's, a policy's denial, a rejection, a caught check) on the day they
  were decided,
- model spend on the day it was spent, except for cost per outcome, which is the whole spend
  of the runs behind the outcomes committed in the period.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from approvals.models import Decision, Proposal, ProposalStatus, RejectCategory, Risk

MAX_DAYS = 366
DEFAULT_DAYS = 30
# Effector -> the outcome one commit of it is, for cost per outcome.
OUTCOMES = {
    "catalog.update_description": "description",
    "catalog.send_reply": "message",
    # A brief's approved schedule: its posts on every channel, and the run that drafted them.
    "content.schedule_post": "post",
}
DESCRIPTION_EFFECTOR = "catalog.update_description"
MONEY = Decimal("0.000001")

# -- the arithmetic ---------------------------------------------------------------------------


def review_seconds(*, opened_at: datetime, decided_at: datetime, cap_seconds: float) -> int:
    """A person's review of a card: from opening to deciding, never below 0 or above the cap."""
    spent = (decided_at - opened_at).total_seconds()
    return round(min(max(spent, 0.0), cap_seconds))


def share(part: int, whole: int) -> float | None:
    """part / whole as a fraction (4 places), or None when there is nothing to share."""
    return round(part / whole, 4) if whole else None


def minutes_saved(*, replaced: float, review_seconds: int) -> float:
    """The person's minutes the work replaced, less the minutes they spent reviewing it."""
    return round(replaced - review_seconds / 60, 1)


def per_outcome(spend: Decimal, count: int) -> Decimal | None:
    return (spend / count).quantize(MONEY) if count else None


# -- minutes per effector and pipeline --------------------------------------------------------


def minutes_defaults() -> dict[str, tuple[str, float]]:
    """Every registered effector's and pipeline's name -> (kind, the minutes its class says
    one outcome replaces)."""
    from agents.pipelines import get_pipeline, pipeline_names
    from approvals.effectors import effector_names, get_effector

    defaults = {name: ("pipeline", get_pipeline(name).minutes_saved) for name in pipeline_names()}
    defaults |= {
        name: ("effector", get_effector(name).replaces_minutes) for name in effector_names()
    }
    return defaults


def minutes_table(*, workspace) -> dict[str, float]:
    """Name -> the minutes in effect for the workspace: its own figure, else the class's."""
    own = workspace.outcome_minutes or {}
    return {
        name: float(own.get(name, default)) for name, (_, default) in minutes_defaults().items()
    }


def outcome_minutes(*, workspace) -> list[dict[str, Any]]:
    """What the minutes form shows: effectors first, then pipelines, by name."""
    own = workspace.outcome_minutes or {}
    rows = [
        {
            "name": name,
            "kind": kind,
            "default": float(default),
            "minutes": float(own.get(name, default)),
            "own": own.get(name),
        }
        for name, (kind, default) in minutes_defaults().items()
    ]
    return sorted(rows, key=lambda row: (row["kind"] != "effector", row["name"]))


# -- the period -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    since: date
    until: date  # inclusive

    @property
    def start(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.since, time.min))

    @property
    def end(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.until + timedelta(days=1), time.min))

    def days(self) -> list[date]:
        return [self.since + timedelta(days=n) for n in range((self.until - self.since).days + 1)]


def outcome_window(*, since: date | None = None, until: date | None = None) -> Window:
    """The days asked for, both included (until defaults to today, since to 30 days before
    until); ValidationError when they run backwards or cover more than a leap year."""
    until = until or timezone.localdate()
    try:
        since = since or until - timedelta(days=DEFAULT_DAYS - 1)
        window = Window(since, until)
        _bounds = (window.start, window.end)  # the midnights around it must exist too
    except OverflowError as error:
        raise ValidationError("the range must lie within the years 1 to 9999") from error
    if since > until:
        raise ValidationError(f"since ({since}) is after until ({until})")
    if (until - since).days + 1 > MAX_DAYS:
        days = (until - since).days + 1
        raise ValidationError(f"the range covers {days} days; ask for {MAX_DAYS} at most")
    return window


# -- the figures ------------------------------------------------------------------------------


@dataclass
class Tally:
    """Counts that add up: one per (day, agent) row, summed into a day, an agent, the total."""

    proposals_committed: int = 0
    runs_without_proposals: int = 0
    automated: int = 0
    human_approved: int = 0
    low_risk_automated: int = 0
    low_risk_human_approved: int = 0
    minutes_replaced: float = 0.0
    review_seconds: int = 0
    human_decisions: int = 0
    policy_denials: int = 0
    rejections: dict[str, int] = field(default_factory=dict)
    failed_checks: int = 0
    errors_prevented: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    outcome_spend: dict[str, Decimal] = field(default_factory=dict)
    spend_by_tier: dict[str, Decimal] = field(default_factory=dict)

    def add(self, part: Tally) -> None:
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(part, f.name)
            if isinstance(mine, dict):
                for key, value in theirs.items():
                    mine[key] = mine.get(key, 0) + value
            else:
                setattr(self, f.name, mine + theirs)

    def figures(self, turnaround: dict[str, timedelta | None]) -> dict[str, Any]:
        decided_by_policy, decided_by_people = self.automated, self.human_approved
        low_auto, low_people = self.low_risk_automated, self.low_risk_human_approved
        spend = sum(self.spend_by_tier.values(), Decimal(0))
        return {
            "tasks_completed": self.proposals_committed + self.runs_without_proposals,
            "proposals_committed": self.proposals_committed,
            "runs_without_proposals": self.runs_without_proposals,
            "automated": decided_by_policy,
            "human_approved": decided_by_people,
            "automated_share": share(decided_by_policy, decided_by_policy + decided_by_people),
            "low_risk_automated": low_auto,
            "low_risk_human_approved": low_people,
            "low_risk_automated_share": share(low_auto, low_auto + low_people),
            "minutes_replaced": round(self.minutes_replaced, 1),
            "review_minutes": round(self.review_seconds / 60, 1),
            "minutes_saved": minutes_saved(
                replaced=self.minutes_replaced, review_seconds=self.review_seconds
            ),
            "policy_denials": self.policy_denials,
            "rejections": {c: self.rejections.get(c, 0) for c in RejectCategory.values},
            "rejected": sum(self.rejections.values()),
            "failed_checks": self.failed_checks,
            "errors_prevented": self.errors_prevented,
            "human_decisions": self.human_decisions,
            "turnaround_p50_seconds": _seconds(turnaround.get("p50")),
            "turnaround_p90_seconds": _seconds(turnaround.get("p90")),
            "cost_per_outcome": {
                outcome: {
                    "count": self.outcomes.get(outcome, 0),
                    "spend": self.outcome_spend.get(outcome, Decimal(0)).quantize(MONEY),
                    "per_outcome": per_outcome(
                        self.outcome_spend.get(outcome, Decimal(0)), self.outcomes.get(outcome, 0)
                    ),
                }
                for outcome in OUTCOMES.values()
            },
            "spend": spend.quantize(MONEY),
            "spend_by_tier": {
                tier: amount.quantize(MONEY) for tier, amount in sorted(self.spend_by_tier.items())
            },
        }


def _seconds(duration: timedelta | None) -> float | None:
    return round(duration.total_seconds(), 1) if duration is not None else None


class Percentile(Aggregate):
    """PostgreSQL's percentile_cont over an interval (the fraction is ours, never input)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression, *, fraction: float, **extra) -> None:
        super().__init__(
            expression, fraction=float(fraction), output_field=DurationField(), **extra
        )


# A person decided (approved or rejected; what happened after does not matter).
BY_A_PERSON = Q(decision=Decision.REQUIRE_APPROVAL) & ~Q(
    status__in=[ProposalStatus.PENDING, ProposalStatus.EXPIRED]
)
DENIED = Q(decision=Decision.DENY)
REJECTED_BY_A_PERSON = Q(decision=Decision.REQUIRE_APPROVAL, status=ProposalStatus.REJECTED)
# A draft whose checks failed and that did not go out as written: rejected, denied, left to
# expire, or edited before it was approved.
CAUGHT_CHECKS = Q(
    effector=DESCRIPTION_EFFECTOR, proposed_payload__checks__contains=[{"ok": False}]
) & (Q(status__in=[ProposalStatus.REJECTED, ProposalStatus.EXPIRED]) | Q(edited=True))


def outcome_metrics(*, workspace, window: Window, agent=None) -> dict[str, Any]:
    """The workspace's outcomes over the window, of one agent if given: totals, per day
    (every day of the window) and per agent. A constant number of queries."""
    from agents.models import Agent

    agents = Agent.objects.filter(workspace=workspace).order_by("name", "slug")
    agents = [agent] if agent is not None else list(agents)
    report = _Report(window.days(), [a.pk for a in agents])
    scope = {"workspace_id": workspace.pk, **({"agent_id": agent.pk} if agent else {})}
    minutes = minutes_table(workspace=workspace)
    for day, agent_id, part in _committed(scope, window, minutes):
        report.add(day, agent_id, part)
    for day, agent_id, part in _runs_without_proposals(scope, window, minutes):
        report.add(day, agent_id, part)
    for day, agent_id, part in _decisions(scope, window):
        report.add(day, agent_id, part)
    for day, agent_id, part in _spend(scope, window):
        report.add(day, agent_id, part)
    turnaround = _turnaround(scope, window)
    return {
        "since": window.since,
        "until": window.until,
        "agent": agent.slug if agent else None,
        "totals": report.total.figures(turnaround[None]),
        "days": [
            {"day": day, **tally.figures(turnaround["day"].get(day, {}))}
            for day, tally in report.days.items()
        ],
        "agents": [
            {
                "agent": a.slug,
                "name": a.name,
                **report.agents[a.pk].figures(turnaround["agent"].get(a.pk, {})),
            }
            for a in agents
        ],
    }


class _Report:
    def __init__(self, days: list[date], agent_ids: list[int]) -> None:
        self.total = Tally()
        self.days = {day: Tally() for day in days}
        self.agents = {agent_id: Tally() for agent_id in agent_ids}

    def add(self, day: date, agent_id: int | None, part: Tally) -> None:
        self.total.add(part)
        if day in self.days:
            self.days[day].add(part)
        if agent_id in self.agents:
            self.agents[agent_id].add(part)


def _in(window: Window, stamp: str) -> Q:
    return Q(**{f"{stamp}__gte": window.start, f"{stamp}__lt": window.end})


def _committed(scope: dict, window: Window, minutes: dict[str, float]):
    """Committed proposals by day, agent, effector, decision and risk, with the whole spend
    of the runs that made them."""
    from agents.models import CostEntry

    run_spend = Subquery(
        CostEntry.objects.filter(run_id=OuterRef("run_id"))
        .values("run_id")
        .annotate(total=Sum("cost"))
        .values("total")[:1]
    )
    rows = (
        Proposal.objects.filter(_in(window, "committed_at"), status=ProposalStatus.COMMITTED)
        .filter(**scope)
        .values("agent_id", "effector", "decision", "risk", day=TruncDate("committed_at"))
        .annotate(n=Count("pk"), spend=Sum(run_spend, default=Decimal(0)))
        .order_by()
    )
    for row in rows:
        n, auto, low = row["n"], row["decision"] == Decision.AUTO_APPROVE, row["risk"] == Risk.LOW
        outcome = OUTCOMES.get(row["effector"])
        yield (
            row["day"],
            row["agent_id"],
            Tally(
                proposals_committed=n,
                automated=n if auto else 0,
                human_approved=0 if auto else n,
                low_risk_automated=n if auto and low else 0,
                low_risk_human_approved=n if low and not auto else 0,
                minutes_replaced=n * minutes.get(row["effector"], 0.0),
                outcomes={outcome: n} if outcome else {},
                outcome_spend={outcome: row["spend"]} if outcome else {},
            ),
        )


def _runs_without_proposals(scope: dict, window: Window, minutes: dict[str, float]):
    """Runs that succeeded without proposing anything (an alert raised, a question answered
    in memory): their pipeline's minutes. Runs that proposed count through their commits."""
    from agents.models import Run, RunStatus, Trigger

    rows = (
        Run.objects.filter(_in(window, "finished_at"), status=RunStatus.SUCCEEDED)
        .filter(**scope)
        .exclude(trigger=Trigger.REPLAY)
        .filter(~Exists(Proposal.objects.filter(run_id=OuterRef("pk"))))
        .values("agent_id", pipeline=F("agent__pipeline"), day=TruncDate("finished_at"))
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in rows:
        part = Tally(
            runs_without_proposals=row["n"],
            minutes_replaced=row["n"] * minutes.get(row["pipeline"], 0.0),
        )
        yield row["day"], row["agent_id"], part


def _decisions(scope: dict, window: Window):
    """People's decisions and their review time, policy denials, rejections by category and
    caught check failures, by the day they were decided."""
    rejected = {
        category: Count(
            "pk",
            filter=REJECTED_BY_A_PERSON
            & Q(reject_category__in=[category, ""] if category == "other" else [category]),
        )
        for category in RejectCategory.values
    }
    rows = (
        Proposal.objects.filter(_in(window, "decided_at"))
        .filter(**scope)
        .values("agent_id", day=TruncDate("decided_at"))
        .annotate(
            human_decisions=Count("pk", filter=BY_A_PERSON),
            review_seconds=Sum("review_seconds", filter=BY_A_PERSON, default=0),
            policy_denials=Count("pk", filter=DENIED),
            failed_checks=Count("pk", filter=CAUGHT_CHECKS),
            errors_prevented=Count("pk", filter=DENIED | REJECTED_BY_A_PERSON | CAUGHT_CHECKS),
            **{f"rejected_{category}": count for category, count in rejected.items()},
        )
        .order_by()
    )
    for row in rows:
        part = Tally(
            human_decisions=row["human_decisions"],
            review_seconds=row["review_seconds"],
            policy_denials=row["policy_denials"],
            rejections={c: row[f"rejected_{c}"] for c in rejected if row[f"rejected_{c}"]},
            failed_checks=row["failed_checks"],
            errors_prevented=row["errors_prevented"],
        )
        yield row["day"], row["agent_id"], part


def _spend(scope: dict, window: Window):
    from agents.models import CostEntry

    rows = (
        CostEntry.objects.filter(_in(window, "created_at"))
        .filter(**scope)
        .values("agent_id", "tier", day=TruncDate("created_at"))
        .annotate(cost=Sum("cost"))
        .order_by()
    )
    for row in rows:
        yield row["day"], row["agent_id"], Tally(spend_by_tier={row["tier"]: row["cost"]})


def _turnaround(scope: dict, window: Window) -> dict:
    """p50 and p90 of created → decided for people's decisions: overall (key None), per day
    and per agent. Percentiles do not add up, so each grouping is its own query."""
    took = ExpressionWrapper(F("decided_at") - F("created_at"), output_field=DurationField())
    decided = Proposal.objects.filter(_in(window, "decided_at"), BY_A_PERSON).filter(**scope)
    percentiles = {
        "p50": Percentile(took, fraction=0.5),
        "p90": Percentile(took, fraction=0.9),
    }
    by_day = decided.values(day=TruncDate("decided_at")).annotate(**percentiles).order_by()
    by_agent = decided.values("agent_id").annotate(**percentiles).order_by()
    return {
        None: decided.aggregate(**percentiles),
        "day": {row.pop("day"): row for row in by_day},
        "agent": {row.pop("agent_id"): row for row in by_agent},
    }
