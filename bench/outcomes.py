"""Business outcomes of a replayable shop day: what AIOS automates, saves and prevents.

    python bench/outcomes.py [--rate 20] [--seed 7] [--flaw-every 6] [--settle 20] [--json PATH]

Starts its own embedded PostgreSQL + Valkey, the demo workspace (its agents, brand and
policies in memory, the default approval policy), `aios web` and a worker, a scripted model
server (bench/scripted_model.py: deterministic drafts from the request; every
`--flaw-every`-th description claims a colour the facts do not state) as the workspace's
provider, and the store simulator playing `shop-day` (products listed, orders, stock moves,
customer messages in four languages, three of them prompt injections) against it; the owner
also writes one content brief (blog, newsletter, social), whose posts are published to a
local receiver once their time comes (the clock moved forward, as the beat task would find
them). A scripted approver decides each card as it appears, by these rules:

- reject a card whose fact check failed (category wrong_facts);
- reject a reply to a message the support agent could not classify that promises money
  back, a discount or a price change (category too_risky) — the agent should not, and does
  not, but the rule is there;
- approve everything else, after a modelled review: the card counts as opened
  REVIEW_SECONDS[effector] before the decision (a person reads a description longer than a
  reply), since the wall-clock time here is milliseconds.

When the day has been replayed and every run has finished, prints the outcome metrics the
Metrics page shows for that day (approvals.outcomes), and the two figures the case studies
report: the share of low-risk tasks automated and the drafting time saved. The day is over
when nothing has been pending or running for `--settle` seconds. With `--json PATH`, the
figures are also written to PATH.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
# Its model server and the receivers it posts to run on this machine, on loopback.
os.environ.setdefault("AIOS_FETCH_PRIVATE_ADDRESSES", "true")

# What a person spends reading a card before deciding it, by effector (seconds).
REVIEW_SECONDS = {
    "catalog.update_description": 60,
    "catalog.send_reply": 25,
    "catalog.set_product_status": 15,
    "core.note": 10,
}
RISKY_WORDS = ("refund", "discount", "price", "free")
# Per million tokens, like a small and a large hosted model (USD): cost per outcome is then
# a figure of the right size, computed by the same ledger as with a real provider.
PRICES = {
    "scripted-small": {"input_per_million": Decimal("0.15"), "output_per_million": Decimal("0.60")},
    "scripted-large": {"input_per_million": Decimal("2.50"), "output_per_million": Decimal("10")},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=20.0, help="shop events a second")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--flaw-every", type=int, default=6)
    parser.add_argument("--settle", type=float, default=20.0, help="quiet seconds that end it")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    options = parser.parse_args()

    from runtime import django_on_embedded_services, machine, write_json

    with django_on_embedded_services():
        from scripted_model import ScriptedModel

        from tests.fakes.receiver import Receiver

        model, publisher = ScriptedModel(flaw_every=options.flaw_every), Receiver()
        workspace, owner, shop = _demo(model.base_url, publisher.url)
        web, worker, url = _start_processes()
        sim = None
        try:
            _brief(workspace, owner)
            sim, sent, started = _replay(shop, url, options)
            decisions = _approve_until_quiet(workspace, owner, quiet_for=options.settle)
            posts = _publish_due(workspace)
            published = posts.get("published", 0)
            finished = time.monotonic() - started
        finally:
            for process in (web, worker):
                process.terminate()
            for process in (web, worker):
                process.wait(timeout=30)
            if sim is not None:
                sim.close()
            model.close()
            publisher.close()
        print(machine())
        print(
            f"shop-day (seed {options.seed}): {sent} events at {options.rate}/s, "
            f"{model.calls} model calls, {decisions} decisions by the scripted approver, "
            f"{finished:.0f} s; writes at the shop: {len(sim.writes)}, replies: "
            f"{len(sim.replies)}, posts published: {published} ({len(publisher.effects)} "
            f"received; posts by status: {posts})"
        )
        totals, waited = _report(workspace)
        write_json(
            options.json,
            {
                "seed": options.seed,
                "events": sent,
                "model_calls": model.calls,
                "decisions": decisions,
                "shop_writes": len(sim.writes),
                "replies": len(sim.replies),
                "posts_published": published,
                "posts": posts,
                "seconds": round(finished),
                "totals": totals,
                "low_risk_approved_by_a_person": waited,
            },
        )


def _demo(model_url: str, publish_url: str):
    from agents.llm.intents import examples_seed
    from agents.services.models import provider_save
    from aios_site.prepare import demo_setup
    from approvals.audit import SETUP
    from approvals.services import webhook_endpoint_save
    from catalog.services import demo_store_ensure

    demo = demo_setup()
    provider_save(
        workspace=demo.workspace,
        name="scripted",
        base_url=model_url,
        api_key="bench",
        model_small="scripted-small",
        model_large="scripted-large",
        is_default=True,
        prices={model: PRICES[model] for model in PRICES},
        allow_private=True,  # the bench's own scripted model server, on this machine
    )
    examples_seed(workspace_id=demo.workspace.pk)
    shop = demo_store_ensure(workspace=demo.workspace, simulator_url="http://127.0.0.1:1")
    # After the demo shop, which may point publishing at its simulator: posts go to our
    # receiver, which counts them.
    webhook_endpoint_save(
        workspace=demo.workspace,
        name="publish",
        url=publish_url,
        secret="bench-publish-secret",  # noqa: S106 - the bench's own local receiver
        actor=SETUP,
        allow_private=True,
    )
    owner = demo.workspace.memberships.get(role="owner")
    return demo.workspace, owner, shop


def _start_processes():
    from webhooks import _wait_healthy, web_command

    from tests.helpers import free_port

    port = free_port()
    env = {**os.environ, "AIOS_LOG_LEVEL": "WARNING"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    web = subprocess.Popen(web_command(port, 2), **quiet)
    worker = subprocess.Popen([sys.executable, "-m", "aios_site.cli", "worker", "-c", "2"], **quiet)
    _wait_healthy(port)
    return web, worker, f"http://127.0.0.1:{port}"


def _replay(shop: dict, url: str, options):
    from catalog.models import StoreConnection
    from catalog.simulator import StoreSimulator
    from catalog.simulator.command import run
    from catalog.simulator.scenarios import shop_day

    sim = StoreSimulator(
        shop_domain=shop["shop"],
        webhook_secret=shop["secret"],
        access_token=shop["access_token"],
        target=url,
        api_token=shop["api_token"],
    ).start()
    StoreConnection.objects.filter(shop_domain=shop["shop"]).update(
        api_base_url=sim.base_url, outbound_url=f"{sim.base_url}/outbound/replies"
    )
    started = time.monotonic()
    events = shop_day(products=sim.products, shop_domain=sim.shop_domain, seed=options.seed)
    with contextlib.redirect_stdout(io.StringIO()):  # the simulator prints a line an event
        sent = run(sim, events, rate=options.rate)
    return sim, sent, started


def _brief(workspace, owner) -> None:
    from catalog.content.services import brief_create

    brief_create(
        workspace=workspace,
        user=owner.user,
        topic="Caring for linen in summer",
        audience="customers who bought linen",
        channels=["blog", "newsletter", "social"],
        languages=["en"],
    )


def _publish_due(workspace, timeout: float = 120) -> dict[str, int]:
    """The day's posts, published by the worker with its clock moved past their time; how
    many of them ended in each status."""
    from collections import Counter

    from catalog.models import ScheduledPost
    from catalog.tasks import content_publish_due

    posts = ScheduledPost.objects.filter(workspace=workspace)
    last = max((post.publish_at for post in posts), default=None)
    if last is None:
        return {}
    content_publish_due.delay((last + timedelta(minutes=1)).isoformat())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and posts.filter(status="scheduled").exists():
        time.sleep(0.5)
    for status, error in posts.exclude(status="published").values_list("status", "error"):
        print(f"a post left {status}: {error or 'no error recorded'}")
    return dict(Counter(posts.values_list("status", flat=True)))


def _approve_until_quiet(workspace, owner, quiet_for: float = 20.0, limit: float = 900) -> int:
    """Decides pending cards until nothing has been pending or running for `quiet_for` s."""
    from agents.models import ACTIVE_STATUSES, Run
    from approvals.models import Proposal

    decided, last_activity, deadline = 0, time.monotonic(), time.monotonic() + limit
    while time.monotonic() < deadline:
        pending = list(Proposal.objects.filter(workspace=workspace, status="pending"))
        for proposal in pending:
            _decide(proposal, owner)
            decided += 1
        active = Run.objects.filter(workspace=workspace, status__in=ACTIVE_STATUSES)
        busy = active.exclude(status="waiting").exists() or pending
        if busy:
            last_activity = time.monotonic()
        elif time.monotonic() - last_activity > quiet_for:
            break
        time.sleep(0.5)
    return decided


def _decide(proposal, owner) -> None:
    from django.utils import timezone

    from approvals.services import proposal_approve, proposal_reject

    _opened(proposal, owner, timezone.now() - timedelta(seconds=_review(proposal)))
    failed = [c for c in proposal.payload.get("checks") or [] if not c.get("ok")]
    body = str(proposal.payload.get("body", "")).lower()
    if failed:
        proposal_reject(
            proposal=proposal,
            membership=owner,
            reason="a claim the product facts do not support",
            **_category("wrong_facts"),
        )
    elif proposal.effector == "catalog.send_reply" and any(w in body for w in RISKY_WORDS):
        if proposal.payload.get("intent") == "unknown":
            proposal_reject(
                proposal=proposal,
                membership=owner,
                reason="promises more than the policy",
                **_category("too_risky"),
            )
            return
        proposal_approve(proposal=proposal, membership=owner, shown_hash=proposal.payload_hash)
    else:
        proposal_approve(proposal=proposal, membership=owner, shown_hash=proposal.payload_hash)


def _review(proposal) -> float:
    return REVIEW_SECONDS.get(proposal.effector, 20)


def _opened(proposal, owner, at) -> None:
    """The card as opened by the owner at `at` (the Metrics page measures review from it)."""
    from approvals.models import ProposalOpened

    ProposalOpened.objects.get_or_create(
        proposal=proposal, user=owner.user, defaults={"opened_at": at}
    )


def _category(name: str) -> dict:
    return {"category": name}


def _report(workspace) -> tuple[dict, dict[str, int]]:
    from approvals.outcomes import outcome_metrics, outcome_window

    totals = outcome_metrics(workspace=workspace, window=outcome_window())["totals"]
    replaced, saved = totals["minutes_replaced"], totals["minutes_saved"]
    print(
        f"tasks completed: {totals['tasks_completed']} ({totals['proposals_committed']} "
        f"committed proposals, {totals['runs_without_proposals']} runs that needed none)"
    )
    print(
        f"automated by policy: {totals['automated']} of "
        f"{totals['automated'] + totals['human_approved']} committed "
        f"({_percent(totals['automated_share'])}); low-risk: {totals['low_risk_automated']} of "
        f"{totals['low_risk_automated'] + totals['low_risk_human_approved']} "
        f"({_percent(totals['low_risk_automated_share'])}) — case studies: 70 %"
    )
    print(
        f"minutes: {replaced} of work replaced, {totals['review_minutes']} spent reviewing, "
        f"{saved} saved ({_percent(saved / replaced if replaced else None)} less) — case "
        "studies: 60 % less drafting time"
    )
    print(
        f"errors prevented: {totals['errors_prevented']} (policy denials "
        f"{totals['policy_denials']}, failed fact checks caught {totals['failed_checks']}, "
        f"rejections {totals['rejections']})"
    )
    waited = _low_risk_waiting(workspace)
    print(f"low-risk cards a person approved: {waited}")
    totals["automated_replies"] = _automated_replies(workspace)
    checked = totals["automated_replies"]
    print(
        f"replies sent without a person: {checked['sent']}, right: {checked['right']} "
        f"(the intent answered is the one the shop day's message is labelled with)"
        + (f"; wrong: {', '.join(checked['wrong'])}" if checked["wrong"] else "")
    )
    for outcome, figures in totals["cost_per_outcome"].items():
        print(f"cost per {outcome}: {figures['per_outcome']} ({figures['count']})")
    print(f"model spend by tier: {totals['spend_by_tier']}")
    return totals, waited


# The shop day's message topics (catalog/data/demo-messages.json) and the intents whose
# answer is a right answer to them.
TOPIC_INTENTS = {
    "order_status": {"track_order"},
    "shipping": {"delivery_period", "delivery_options"},
    "return": {"check_refund_policy"},
    "product_question": {"product_question"},
}


def _automated_replies(workspace) -> dict:
    """Of the replies the policy sent by itself, how many answered what the customer asked."""
    from approvals.models import Proposal
    from catalog.models import Message
    from catalog.simulator.products import demo_messages

    topics = {(m["subject"], m["body"]): m["topic"] for m in demo_messages()}
    sent = list(
        Proposal.objects.filter(
            workspace=workspace,
            effector="catalog.send_reply",
            decision="auto_approve",
            decided_by__isnull=True,
        )
    )
    messages = Message.objects.in_bulk([card.payload.get("message_id") for card in sent])
    right, wrong = 0, []
    for card in sent:
        message = messages.get(card.payload.get("message_id"))
        topic = topics.get((message.subject, message.body)) if message else None
        if card.payload.get("intent") in TOPIC_INTENTS.get(topic, set()):
            right += 1
        else:
            wrong.append(f"{topic} answered as {card.payload.get('intent')}")
    return {"sent": len(sent), "right": right, "wrong": wrong}


def _low_risk_waiting(workspace) -> dict[str, int]:
    """What kept low-risk work from going out by itself: effector (intent, tier) → count."""
    from collections import Counter

    from approvals.models import Proposal

    waited = Proposal.objects.filter(
        workspace=workspace, risk="low", decision="require_approval", status="committed"
    )
    return dict(
        Counter(
            f"{p.effector} ({p.payload.get('intent', '-')}, {p.payload.get('tier', '-')})"
            for p in waited
        )
    )


def _percent(value) -> str:
    return "n/a" if value is None else f"{float(value) * 100:.0f} %"


if __name__ == "__main__":
    main()
