"""What must hold over the whole history of a chaos run, however often workers died and
services restarted. `violations(...)` returns one sentence per broken promise, so a test
can assert there are none, or (with idempotency keys off) that duplicates were found."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass

from django.db.models import Count

from agents.models import FINISHED_STATUSES, Checkpoint, CheckpointStatus, Run, RunStatus
from approvals.audit import audit_verify
from approvals.models import AuditEntry, Proposal, ProposalStatus
from catalog.models import (
    ContentBrief,
    ContentDraft,
    EventStatus,
    Message,
    PostStatus,
    ScheduledPost,
    WebhookEvent,
)

# The effectors whose commit reaches the shop (its Admin API or its outbound endpoint).
AT_THE_SHOP = {
    "catalog.update_description",
    "catalog.set_product_status",
    "catalog.change_price",
    "catalog.send_reply",
}
PROPOSAL_KEY, POST_KEY = "aios-proposal-", "aios-post-"


@dataclass(frozen=True)
class Effect:
    """One change the shop applied, with the idempotency key it came with."""

    key: str
    what: str


def shop_effects(sim) -> list[Effect]:
    writes = [Effect(w["idempotency_key"] or "", f"{w['method']} {w['path']}") for w in sim.writes]
    outbound = [Effect(r["idempotency_key"] or "", f"outbound #{r['id']}") for r in sim.replies]
    return writes + outbound


def violations(
    *,
    effects: list[Effect],
    webhooks: list[str] = (),
    messages: list[str] = (),
    briefs: list[int] = (),
) -> list[str]:
    return [
        *runs_not_settled(),
        *runs_failed_by_faults(),
        *checkpoint_gaps(),
        *effects_not_once(effects),
        *effects_without_approval(),
        *drafts_kept_twice(),
        *audit_chain(),
        *requests_lost(webhooks, messages, briefs),
    ]


def runs_not_settled() -> list[str]:
    """Every run has finished or waits for something (a person, a budget, a model)."""
    unsettled = Run.objects.exclude(status__in=[*FINISHED_STATUSES, RunStatus.WAITING])
    return [f"run {run.pk} ({run.agent.pipeline}) is still {run.status}" for run in unsettled]


# A step whose worker died on every attempt fails its run: the only failure a fault may cause
# (the shop, the model and the owner never fail a step here).
OUT_OF_ATTEMPTS = re.compile(r"PermanentError: step '\w+' did not complete in \d+ attempts")


def runs_failed_by_faults() -> list[str]:
    """No run failed for any other reason: a fault loses nothing."""
    failed = Run.objects.filter(status=RunStatus.FAILED).values_list("pk", "error")
    return [
        f"run {pk} failed: {error[:200]}"
        for pk, error in failed
        if not OUT_OF_ATTEMPTS.fullmatch(error)
    ]


def checkpoint_gaps() -> list[str]:
    """Steps 1…n, attempts 1…m of each; each step but the last ended ok on its last attempt,
    and only then; nothing left running; the run's next step follows its checkpoints."""
    steps: dict[int, dict[int, list[tuple[int, str]]]] = defaultdict(lambda: defaultdict(list))
    rows = Checkpoint.objects.values_list("run_id", "seq", "attempt", "status")
    for run_id, seq, attempt, status in rows.order_by("run_id", "seq", "attempt"):
        steps[run_id][seq].append((attempt, status))
    next_seqs = dict(Run.objects.values_list("pk", "next_seq"))
    found = []
    for run_id, by_seq in sorted(steps.items()):
        found += _run_gaps(run_id, by_seq, next_seqs[run_id])
    return found


def _run_gaps(run_id: int, by_seq: dict[int, list[tuple[int, str]]], next_seq: int) -> list[str]:
    last = max(by_seq)
    if sorted(by_seq) != list(range(1, last + 1)):
        return [f"run {run_id}: its steps are {sorted(by_seq)}, with a gap"]
    found = []
    for seq, attempts in sorted(by_seq.items()):
        numbers, statuses = [a for a, _ in attempts], [s for _, s in attempts]
        if numbers != list(range(1, len(numbers) + 1)):
            found.append(f"run {run_id} step {seq}: attempts {numbers}, with a gap")
        if CheckpointStatus.RUNNING in statuses:
            found.append(f"run {run_id} step {seq}: an attempt was left running")
        oks = statuses.count(CheckpointStatus.OK)
        if oks > 1 or (oks == 1 and statuses[-1] != CheckpointStatus.OK):
            found.append(f"run {run_id} step {seq}: completed {oks} times ({statuses})")
        if seq < last and statuses[-1] != CheckpointStatus.OK:
            found.append(f"run {run_id} step {seq}: the run went on after {statuses[-1]}")
    expected = last + 1 if by_seq[last][-1][1] == CheckpointStatus.OK else last
    if next_seq != expected:
        found.append(f"run {run_id}: next step {next_seq} after checkpoints up to {last}")
    return found


def _owner(key: str) -> tuple[str, int] | None:
    """The proposal or post a key names ("aios-proposal-7", or "aios-proposal-7~…" for a
    fresh key per attempt), or None."""
    base = key.split("~", 1)[0]
    for prefix, kind in ((PROPOSAL_KEY, "proposal"), (POST_KEY, "post")):
        number = base.removeprefix(prefix)
        if base.startswith(prefix) and number.isdigit():
            return kind, int(number)
    return None


def applied_twice(effects: list[Effect]) -> bool:
    """Whether the shop applied some change twice (the raw count, before any check)."""
    owners = Counter(_owner(effect.key) for effect in effects)
    return any(times > 1 for owner, times in owners.items() if owner is not None)


def effects_not_once(effects: list[Effect]) -> list[str]:
    """The shop's changes are exactly the committed proposals (and published posts), each
    applied once."""
    found, applied = [], Counter()
    for effect in effects:
        owner = _owner(effect.key)
        if owner is None:
            found.append(f"the shop applied {effect.what} for no proposal (key {effect.key!r})")
        else:
            applied[owner] += 1
    proposals = {p.pk: p for p in Proposal.objects.filter(effector__in=AT_THE_SHOP)}
    posts = dict(ScheduledPost.objects.values_list("pk", "status"))
    for (kind, number), times in sorted(applied.items()):
        status = proposals[number].status if kind == "proposal" and number in proposals else None
        if kind == "post":
            status = posts.get(number)
        done = ProposalStatus.COMMITTED if kind == "proposal" else PostStatus.PUBLISHED
        if times > 1:
            found.append(f"{kind} {number} was applied {times} times at the shop")
        if status != done:
            found.append(f"{kind} {number} reached the shop but is {status}")
    committed = [pk for pk, p in proposals.items() if p.status == ProposalStatus.COMMITTED]
    published = [pk for pk, status in posts.items() if status == PostStatus.PUBLISHED]
    found += [
        f"proposal {pk} is committed; the shop never saw it"
        for pk in committed
        if ("proposal", pk) not in applied
    ]
    found += [
        f"post {pk} is published; the shop never saw it"
        for pk in published
        if ("post", pk) not in applied
    ]
    return found


def effects_without_approval() -> list[str]:
    """Every commit follows an approval of exactly what was committed, by a person or by the
    policy, as the audit log tells; a post goes out only under an approved schedule."""
    found = []
    committed = Proposal.objects.filter(status=ProposalStatus.COMMITTED)
    entries = defaultdict(list)
    audited = AuditEntry.objects.filter(object_type="proposal", action__startswith="proposal.")
    for entry in audited.order_by("seq"):
        entries[entry.object_id].append(entry)
    for proposal in committed:
        trail = entries[str(proposal.pk)]
        approvals = [e for e in trail if e.action == "proposal.approve" and _approver(e)]
        commits = [e for e in trail if e.action == "proposal.commit"]
        if len(commits) != 1:
            found.append(f"proposal {proposal.pk} has {len(commits)} commit entries")
        if not approvals:
            found.append(f"proposal {proposal.pk} was committed without an approval")
        elif approvals[-1].after.get("payload_hash") != proposal.payload_hash:
            found.append(f"proposal {proposal.pk} was committed with a payload nobody approved")
        elif commits and commits[0].seq < approvals[-1].seq:
            found.append(f"proposal {proposal.pk} was committed before it was approved")
    unapproved = ScheduledPost.objects.filter(status=PostStatus.PUBLISHED).exclude(
        proposal__status=ProposalStatus.COMMITTED
    )
    found += [f"post {post.pk} went out under a schedule not committed" for post in unapproved]
    return found


def _approver(entry: AuditEntry) -> bool:
    """A person, or the workspace's policy."""
    return entry.actor_kind == "user" or (
        entry.actor_kind == "system" and entry.actor_label == "policy"
    )


def drafts_kept_twice() -> list[str]:
    """An approved review keeps each draft once, however often its commit ran."""
    twice = (
        ContentDraft.objects.values("proposal_id", "channel", "language", "author")
        .annotate(times=Count("pk"))
        .filter(times__gt=1)
    )
    return [
        f"proposal {row['proposal_id']} kept its {row['channel']} ({row['language']}) "
        f"{row['author']} draft {row['times']} times"
        for row in twice
    ]


def audit_chain() -> list[str]:
    verdict = audit_verify()
    if verdict.ok:
        return []
    return [f"the audit chain breaks at {verdict.workspace_id}/{verdict.seq}: {verdict.problem}"]


def requests_lost(webhooks: list[str], messages: list[str], briefs: list[int]) -> list[str]:
    """Every accepted webhook was processed; every accepted message and brief has a run."""
    found = []
    events = dict(WebhookEvent.objects.values_list("webhook_id", "status"))
    for webhook_id in webhooks:
        if webhook_id not in events:
            found.append(f"webhook {webhook_id} was accepted and is gone")
        elif events[webhook_id] == EventStatus.RECEIVED:
            found.append(f"webhook {webhook_id} was accepted and never processed")
    stuck = WebhookEvent.objects.filter(status=EventStatus.RECEIVED).count()
    if stuck:
        found.append(f"{stuck} stored webhook events were never processed")
    answered = set(
        Run.objects.filter(agent__pipeline="catalog.reply_to_customer").values_list(
            "input__message_id", flat=True
        )
    )
    stored = dict(Message.objects.values_list("external_id", "pk"))
    for external_id in messages:
        if external_id not in stored:
            found.append(f"message {external_id} was accepted and is gone")
        elif stored[external_id] not in answered:
            found.append(f"message {external_id} was accepted and no run answers it")
    started = dict(ContentBrief.objects.values_list("pk", "run_id"))
    unstarted = [pk for pk in briefs if started.get(pk) is None]
    found += [f"brief {pk} was accepted and no run writes it" for pk in unstarted]
    return found
