"""When a commit's attempts run out, what is recorded is what the target holds: an attempt
may have applied the change and died before recording it (a worker killed or paused right
after the shop answered), so the effector reads the target back, or asks the receiver again
by the same idempotency key, before "failed, nothing applied" is written (issue 17,
behaviour 2; found by the chaos suite: a proposal reached the shop and was marked failed)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from aios_site.core import lease
from aios_site.core.actors import Actor
from approvals.models import Outbox, Proposal
from approvals.services import commit_lease, proposal_commit, proposals_sweep
from catalog.effectors import ChangePrice
from catalog.models import Product, Variant
from catalog.services import store_connect
from catalog.simulator import StoreSimulator
from tests.fakes.receiver import Receiver
from tests.guarantees.test_effects import _approved, _endpoint
from tests.helpers import effect_then

pytestmark = pytest.mark.django_db(transaction=True)

SHOP = "give-up-shop.myshopify.com"


@pytest.fixture
def one_attempt(settings):
    settings.AIOS_COMMIT_MAX_ATTEMPTS = 1
    settings.AIOS_LEASE_SECONDS = 1.0


@pytest.fixture
def shop(workspace):
    with StoreSimulator(shop_domain=SHOP, webhook_secret="w" * 24, access_token="shpat_x") as sim:
        connection = store_connect(
            workspace=workspace,
            shop_domain=SHOP,
            access_token="shpat_x",
            webhook_secrets=["w" * 24],
            actor=Actor.system("test"),
        )
        connection.api_base_url = sim.base_url
        connection.save(update_fields=["api_base_url"])
        yield sim, connection


def _local_variant(workspace, sim, connection) -> Variant:
    """The simulator's first product and variant, known locally as a sync would leave them."""
    shop_product = sim.products[0]
    shop_variant = shop_product["variants"][0]
    product = Product.objects.create(
        workspace=workspace,
        connection=connection,
        external_id=shop_product["id"],
        title=shop_product["title"],
        status=shop_product["status"],
    )
    return Variant.objects.create(
        product=product,
        external_id=shop_variant["id"],
        title=shop_variant["title"],
        price=shop_variant["price"],
    )


def _price_proposal(make_agent, variant: Variant, price: str) -> Proposal:
    agent = make_agent("demo.propose", slug="pricer", allowed_effectors=["catalog.change_price"])
    return _approved(
        agent,
        effector="catalog.change_price",
        payload={"variant_id": variant.external_id, "price": price},
    )


def _shop_price(sim, variant: Variant) -> str:
    product = sim.product(variant.product.external_id)
    return next(v["price"] for v in product["variants"] if v["id"] == variant.external_id)


def _expire(proposal: Proposal) -> None:
    Proposal.objects.filter(pk=proposal.pk).update(
        lease_expires_at=timezone.now() - timedelta(minutes=1)
    )


def _abandoned_price_change(shop, workspace, make_agent):
    """A price change whose only attempt claimed it, read the price before, and died
    before writing anything; its lease has run out."""
    sim, connection = shop
    variant = _local_variant(workspace, sim, connection)
    before = _shop_price(sim, variant)
    proposal = _price_proposal(make_agent, variant, "123.45")
    assert lease.claim(commit_lease(), proposal.pk) is not None
    Proposal.objects.filter(pk=proposal.pk).update(before_image={"price": before})
    _expire(proposal)
    return sim, variant, before, proposal


def test_a_last_attempt_that_applied_the_change_and_died_is_recorded_committed(
    one_attempt, shop, workspace, make_agent
):
    sim, connection = shop
    variant = _local_variant(workspace, sim, connection)
    proposal = _price_proposal(make_agent, variant, "123.45")

    with effect_then(ChangePrice, ConnectionResetError("dropped before it was recorded")):
        proposal_commit(proposal_id=proposal.pk)  # the only attempt there is

    done = Proposal.objects.get(pk=proposal.pk)
    assert done.status == "committed", done.error
    assert done.result["price"] == "123.45"
    assert len(sim.writes) == 1 and _shop_price(sim, variant) == "123.45"
    assert str(Variant.objects.get(pk=variant.pk).price) == "123.45"


def test_a_worker_that_died_before_writing_leaves_failed_nothing_applied_after_a_read_back(
    one_attempt, shop, workspace, make_agent
):
    sim, variant, before, proposal = _abandoned_price_change(shop, workspace, make_agent)

    proposals_sweep()

    failed = Proposal.objects.get(pk=proposal.pk)
    assert failed.status == "failed"
    assert "gave up after 1 attempts" in failed.error and "nothing was applied" in failed.error
    assert sim.writes == [] and _shop_price(sim, variant) == before


def test_a_killed_last_attempt_found_applied_by_the_sweep_is_committed_not_failed(
    one_attempt, shop, workspace, make_agent
):
    sim, connection = shop
    variant = _local_variant(workspace, sim, connection)
    proposal = _price_proposal(make_agent, variant, "99.00")
    with effect_then(ChangePrice, SystemExit("killed")), pytest.raises(SystemExit):
        proposal_commit(proposal_id=proposal.pk)
    assert Proposal.objects.get(pk=proposal.pk).status == "approved"
    _expire(proposal)

    proposals_sweep()

    done = Proposal.objects.get(pk=proposal.pk)
    assert done.status == "committed", done.error
    assert len(sim.writes) == 1  # read back, not written again


def test_a_price_changed_by_someone_else_meanwhile_is_failed_saying_it_may_have_been_applied(
    one_attempt, shop, workspace, make_agent
):
    sim, variant, _, proposal = _abandoned_price_change(shop, workspace, make_agent)
    shop_variant = sim._products[variant.product.external_id]["variants"][0]
    shop_variant["price"] = "77.00"  # the owner, in the shop's admin, meanwhile

    proposals_sweep()

    failed = Proposal.objects.get(pk=proposal.pk)
    assert failed.status == "failed" and "may have been applied" in failed.error


def test_a_webhook_handed_over_by_an_attempt_that_died_is_asked_again_by_its_key(
    one_attempt, proposer, workspace
):
    receiver = Receiver()
    _endpoint(workspace, receiver)
    proposal = _approved(proposer)
    try:
        proposal_commit(proposal_id=proposal.pk)
        # As if that worker died after the request left and before it heard back.
        Outbox.objects.filter(proposal=proposal).update(done_at=None, result=None)
        Proposal.objects.filter(pk=proposal.pk).update(status="approved", lease_attempts=1)
        _expire(proposal)

        proposals_sweep()
    finally:
        receiver.close()

    done = Proposal.objects.get(pk=proposal.pk)
    assert done.status == "committed", done.error
    keys = {r["headers"]["idempotency-key"] for r in receiver.requests}
    assert keys == {f"aios-proposal-{proposal.pk}"} and len(receiver.effects) == 1


def test_a_webhook_the_receiver_refused_every_time_is_failed_nothing_applied(
    one_attempt, proposer, workspace
):
    receiver = Receiver(status=503)
    _endpoint(workspace, receiver)
    proposal = _approved(proposer)
    try:
        proposal_commit(proposal_id=proposal.pk)
    finally:
        receiver.close()

    failed = Proposal.objects.get(pk=proposal.pk)
    assert failed.status == "failed" and "nothing was applied" in failed.error
    assert len(receiver.requests) == 1 and receiver.effects == {}
