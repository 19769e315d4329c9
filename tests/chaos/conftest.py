"""A whole shop for the chaos tests: `aios web` (daphne) and `aios beat` on the test
database, the store simulator sending to it, a local OpenAI-compatible model, and the owner's
workspace with its store, agents and policy. The tests start the workers themselves."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import DatabaseError, InterfaceError, connection

from agents.models import Run, RunStatus
from agents.services.models import intent_examples_add
from aios_site.accounts.services import token_create
from approvals.audit import Actor
from approvals.models import Proposal, ProposalStatus
from approvals.policy import DEFAULT_RULES
from approvals.services import rules_set, webhook_endpoint_save
from catalog.models import EventStatus, PostStatus, ScheduledPost, WebhookEvent
from catalog.services import store_connect
from catalog.simulator import StoreSimulator
from tests.catalog.conftest import NEW_SECRET, OLD_SECRET, SHOP
from tests.catalog.test_pipelines import INTENT_EXAMPLES
from tests.chaos.invariants import shop_effects, violations
from tests.chaos.processes import Process, Workers
from tests.chaos.shop import Shop
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import default_provider, web_serving

# Replies go out by themselves (a policy approval); everything else waits for the owner.
REPLIES_BY_POLICY = {
    "name": "Replies go out by themselves",
    "effector": "catalog.send_reply",
    "decision": "auto_approve",
}


@pytest.fixture(scope="module")
def web(django_db_setup):
    with web_serving(processes=1) as (url, _process):
        yield url


@pytest.fixture(scope="module")
def model():
    server = FakeOpenAI()
    yield server
    server.close()


@dataclass
class ChaosShop:
    shop: Shop
    sim: StoreSimulator
    logs: Path

    def workers(self, *, concurrency: int = 2, **env: str) -> Workers:
        return Workers(self.logs, env=env, concurrency=concurrency)

    def drive(self, workers: Workers, *, until, busy: int = 6, timeout: float = 1800) -> None:
        """Feeds the shop's events (at most `busy` runs queued or running at a time) and
        approves every card, restarting dead workers, until `until()` holds."""
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, "the chaos run did not reach its goal"
            workers.supervise()
            self.shop.resend()
            self.shop.approve_pending()
            if self.shop.busy_runs() < busy:
                self.shop.send_next()
            time.sleep(0.2)

    def settle(self, workers: Workers, *, bound: float) -> float:
        """Approves what is left until nothing moves any more; how long that took (at most
        `bound` seconds: what is still moving then shows up as violations)."""
        started = time.monotonic()
        quiet_since = None
        while time.monotonic() - started < bound:
            workers.supervise()
            self.shop.resend()
            self.shop.approve_pending()
            if os.environ.get("AIOS_CHAOS_DEBUG"):
                print(f"{time.monotonic() - started:.0f}s moving: {_what_moves()}", flush=True)
            if _moving():
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 3:  # the shop's own echoes have landed
                break
            time.sleep(0.5)
        return time.monotonic() - started

    def violations(self) -> list[str]:
        connection.close()  # whatever happened to the old one, ask on a fresh connection
        return violations(
            effects=shop_effects(self.sim),
            webhooks=self.shop.sent.webhooks,
            messages=self.shop.sent.messages,
            briefs=self.shop.sent.briefs,
        )


def _what_moves() -> dict[str, list]:
    """For AIOS_CHAOS_DEBUG: what `settle` still waits for."""
    try:
        return {
            "runs": list(
                Run.objects.filter(
                    status__in=[RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING]
                ).values_list("pk", "status", "current_step")
            ),
            "proposals": list(
                Proposal.objects.filter(
                    status__in=[ProposalStatus.PENDING, ProposalStatus.APPROVED]
                ).values_list("pk", "status")
            ),
            "events": list(
                WebhookEvent.objects.filter(status=EventStatus.RECEIVED).values_list("pk")
            ),
            "posts": list(
                ScheduledPost.objects.filter(
                    status__in=[PostStatus.SCHEDULED, PostStatus.PUBLISHING]
                ).values_list("pk", "status")
            ),
        }
    except (DatabaseError, InterfaceError):
        connection.close()
        return {}


def _moving() -> bool:
    """Anything a worker, the beat or the owner still has to do."""
    try:
        return (
            Run.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists()
            or Run.objects.filter(status=RunStatus.WAITING, waiting_for__kind="proposal").exists()
            or Proposal.objects.filter(
                status__in=[ProposalStatus.PENDING, ProposalStatus.APPROVED]
            ).exists()
            or WebhookEvent.objects.filter(status=EventStatus.RECEIVED).exists()
            or ScheduledPost.objects.filter(
                status__in=[PostStatus.SCHEDULED, PostStatus.PUBLISHING]
            ).exists()
        )
    except (DatabaseError, InterfaceError):
        connection.close()
        return True


@pytest.fixture
def chaos_shop(workspace, owner, web, model, tmp_path):
    sim = StoreSimulator(
        shop_domain=SHOP, webhook_secret=NEW_SECRET, access_token="shpat_x", target=web, products=[]
    )
    sim.start()
    store_connect(
        workspace=workspace,
        shop_domain=SHOP,
        access_token="shpat_x",
        webhook_secrets=[NEW_SECRET, OLD_SECRET],
        actor=Actor("user", "test"),
        api_base_url=sim.base_url,
        outbound_url=sim.replies_url,
    )
    default_provider(workspace, model.base_url)
    intent_examples_add(workspace=workspace, examples=INTENT_EXAMPLES, source="test")
    rules_set(
        workspace=workspace, rules=[REPLIES_BY_POLICY, *DEFAULT_RULES], actor=Actor.system("test")
    )
    # Posts are published to the shop's outbound endpoint too, so every effect is counted there.
    webhook_endpoint_save(
        workspace=workspace,
        name="publish",
        url=sim.replies_url,
        secret=NEW_SECRET,
        actor=Actor.system("test"),
    )
    membership = owner.memberships.get(workspace=workspace)
    _, api_token = token_create(membership=membership, name="chaos")
    sim.api_token = api_token
    shop = Shop(
        sim=sim, web_url=web, api_token=api_token, membership=membership, tag=uuid.uuid4().hex[:6]
    )
    beat = Process("beat", env={}, log=tmp_path / "beat.log")
    try:
        yield ChaosShop(shop=shop, sim=sim, logs=tmp_path)
    finally:
        beat.stop()
        sim.close()
        connection.close()  # the teardown's flush gets a fresh connection
