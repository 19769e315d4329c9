"""An eval measures a configuration, not only a provider: a prompt version and a tier policy
are tried on the eval's runs alone, named in its label, and compared item by item; an agent
chooses its prompt versions in its settings, checked like its tier policy."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from agents.evals import runner
from agents.llm import prompts
from agents.models import Agent, EvalRun, JournalEntry
from aios_site.accounts.services import token_create
from tests.fakes.openai_server import Reply

pytestmark = pytest.mark.django_db

ITEMS = 8  # en-001 … en-008: templated order questions, a refund demand, complaints
NEWER = prompts.PROMPTS["reply"]["2026-12"]
OLDER = prompts.PROMPTS["reply"]["2026-11"]


@pytest.fixture
def candidate(candidate):
    """The provider, answering every draft with a reply that promises a person."""
    candidate.script(*[Reply("Thank you for writing: a person will follow up.")] * 40)
    return candidate


def _eval(workspace, *, provider="candidate", **configured) -> EvalRun:
    started = runner.eval_start(
        workspace=workspace,
        dataset="support-messages",
        provider=provider,
        configured=runner.configuration(**configured),
        limit=ITEMS,
    )
    return runner.eval_execute(eval_run_id=started.pk, limit=ITEMS)


def _instructions(requests) -> list[str]:
    return [request["messages"][0]["content"] for request in requests]


def test_two_wordings_of_the_reply_are_compared_on_the_same_messages(candidate, workspace):
    older = _eval(workspace)
    asked_before = len(candidate.requests)
    newer = _eval(workspace, prompts={"reply": "2026-12"})

    drafted_older = _instructions(candidate.requests[:asked_before])
    drafted_newer = _instructions(candidate.requests[asked_before:])
    assert drafted_older and drafted_newer, "the refund demand and the complaints are drafted"
    assert all("Be warm and brief" in text for text in drafted_older)
    assert all(
        "Answer the customer's question in the first sentence" in text for text in drafted_newer
    )
    assert newer.label == "candidate · reply prompt 2026-12 (Answer first, facts quoted exactly)"
    assert older.label == "candidate" and newer.configuration == {"prompts": {"reply": "2026-12"}}
    # The trace of each draft says which wording wrote it.
    tags = set(
        JournalEntry.objects.filter(
            run__trigger="eval", name="draft", request__has_key="messages"
        ).values_list("request__prompt", flat=True)
    )
    assert tags == {OLDER.tag, NEWER.tag}
    assert {row["item_id"] for row in runner.compared(older, newer)} == {
        f"en-00{n}" for n in range(1, ITEMS + 1)
    }


def test_a_tier_policy_that_sends_every_intent_to_the_remote_model_asks_it_for_each_message(
    candidate, workspace
):
    cascade = _eval(workspace)
    asked_by_cascade = len(candidate.classify_requests)
    everything = _eval(workspace, tier_policy="remote-intents")

    assert len(candidate.classify_requests) - asked_by_cascade == ITEMS
    served_by = {
        eval_run: [
            entry.response["tier"]
            for entry in JournalEntry.objects.filter(
                run__trigger="eval",
                run__trigger_ref__startswith=f"eval:{eval_run.pk}:",
                name="classify",
            )
        ]
        for eval_run in (cascade, everything)
    }
    # The cascade reads each intent locally first and asks the remote model a second opinion;
    # the policy under test has the remote model read every one itself.
    assert served_by[cascade] == ["local"] * ITEMS
    assert served_by[everything] == ["remote"] * ITEMS
    assert everything.label == "candidate · the remote model reads every intent"
    assert cascade.scores["items"] == everything.scores["items"] == ITEMS


def test_templates_only_asks_no_model_to_write(candidate, workspace):
    done = _eval(workspace, tier_policy="template-drafts")

    assert candidate.requests == [], "no draft was asked of the remote model"
    assert {r.tier for r in done.results.all()} == {"template"}
    # A template's draft still waits for a person where the message is a complaint.
    assert not any(r.auto_sent for r in done.results.filter(intent="complaint"))


def test_a_configuration_that_cannot_be_tried_is_refused_before_anything_runs(shop, workspace):
    with pytest.raises(runner.EvalError, match=r"has no version '2027-01'.*2026-11, 2026-12"):
        runner.configuration(prompts={"reply": "2027-01"})
    with pytest.raises(runner.EvalError, match="no prompt named 'poem'"):
        runner.configuration(prompts={"poem": "2026-11"})
    with pytest.raises(runner.EvalError, match="no tier policy named 'fastest'"):
        runner.configuration(tier_policy="fastest")
    with pytest.raises(runner.EvalError, match="unknown capability"):
        runner.configuration(tier_policy={"dream": {"tier": "remote"}})
    with pytest.raises(runner.EvalError, match="sends classify to a remote model: choose its"):
        runner.eval_start(
            workspace=workspace,
            dataset="support-messages",
            configured=runner.configuration(tier_policy="remote-intents"),
        )
    assert EvalRun.objects.count() == 0


def test_aios_eval_compares_a_prompt_version_against_the_current_one(candidate, workspace):
    out = StringIO()

    call_command(
        "eval",
        "support-messages",
        "--workspace",
        workspace.slug,
        "--provider",
        "candidate",
        "--compare-prompt",
        "reply=2026-12",
        "--limit",
        "3",
        stdout=out,
    )

    printed = out.getvalue()
    assert "candidate · reply prompt 2026-12" in printed
    assert "items answered differently" in printed
    first, second = EvalRun.objects.order_by("pk")
    assert (first.configuration, second.configuration) == ({}, {"prompts": {"reply": "2026-12"}})
    with pytest.raises(CommandError, match="PROMPT=VERSION"):
        call_command("eval", "support-messages", "--workspace", workspace.slug, "--prompt", "x")
    with pytest.raises(CommandError, match=r"a preset .* or a JSON object"):
        call_command(
            "eval", "support-messages", "--workspace", workspace.slug, "--tier-policy", "{nope"
        )
    with pytest.raises(CommandError, match="the same as the first"):
        call_command(
            "eval",
            "support-messages",
            "--workspace",
            workspace.slug,
            "--prompt",
            "reply=2026-12",
            "--compare-prompt",
            "reply=2026-12",
        )


def test_the_evals_form_starts_an_eval_of_a_wording_and_a_tier_policy(
    candidate, workspace, operator_client
):
    page = operator_client.get(f"/w/{workspace.slug}/evals/").content.decode()
    assert "Answer first, facts quoted exactly (2026-12)" in page
    assert "The remote model reads every intent" in page

    answer = operator_client.post(
        f"/w/{workspace.slug}/evals/new/",
        {
            "dataset": "support-messages",
            "provider": "candidate",
            "tier_policy": "remote-intents",
            "prompt_reply": "2026-12",
        },
    )

    started = EvalRun.objects.get()
    assert answer.status_code == 302
    assert started.configuration == {
        "tier_policy": {"classify": {"tier": "remote", "role": "small"}},
        "prompts": {"reply": "2026-12"},
    }
    assert started.label == (
        "candidate · the remote model reads every intent · reply prompt 2026-12 "
        "(Answer first, facts quoted exactly)"
    )


def test_an_agent_writes_with_the_prompt_version_its_owner_chose(
    store, workspace, owner, client, fake_openai
):
    agent = Agent.objects.get(workspace=workspace, pipeline="catalog.reply_to_customer")
    client.force_login(owner)
    page = client.get(f"/w/{workspace.slug}/agents/").content.decode()
    assert 'name="prompt_reply"' in page and "Warm and brief (2026-11, current)" in page

    client.post(
        f"/w/{workspace.slug}/agents/{agent.slug}/settings/",
        {"model_policy": "{}", "prompt_reply": "2026-12"},
    )

    agent.refresh_from_db()
    assert agent.prompt_versions == {"reply": "2026-12"}
    assert prompts.agent_version(agent, "reply") == NEWER
    token = token_create(membership=owner.memberships.get(), name="t")[1]
    refused = client.patch(
        f"/api/v1/agents/{agent.slug}",
        {"prompt_versions": {"reply": "someday"}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert refused.status_code == 400
    assert "the reply prompt has no version 'someday'" in refused.json()["detail"]
    agent.refresh_from_db()
    assert agent.prompt_versions == {"reply": "2026-12"}, "nothing accepted was lost"
