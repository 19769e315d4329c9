"""The intent cascade: the local classifier first; what it is not sure of goes to the remote
small model, constrained to the workspace's intents; with no remote model a person decides.
Runs are real (driven here); the remote model is the local OpenAI-compatible test server."""

from __future__ import annotations

import json

import pytest

from agents.llm import intents
from agents.models import CostEntry
from agents.services import models as model_services
from agents.services import run_start
from tests.agents.conftest import drive
from tests.fakes.openai_server import FakeOpenAI, Reply

pytestmark = pytest.mark.django_db

EXAMPLES = [
    ("where is my order", "track_order"),
    ("track my order please", "track_order"),
    ("how long does delivery take", "delivery_period"),
    ("what is this shirt made of", "product_question"),
]
SURE = "where is my order"  # an example itself: similarity 1.0
UNSURE = "has my parcel been sent yet?"  # locally delivery_period, at about 0.5


@pytest.fixture
def agent(make_agent, workspace):
    intents.examples_add(workspace_id=workspace.pk, examples=EXAMPLES, source="test")
    return make_agent("demo.model_call")


def classify(agent, *texts):
    run = drive(
        run_start(agent=agent, input={"capability": "classify", "request": {"texts": texts}})[0]
    )
    assert run.status == "succeeded", run.error
    return run.outcome


def test_a_message_the_local_classifier_is_sure_of_asks_no_one_else(agent, fake_openai):
    outcome = classify(agent, SURE)

    assert outcome["results"][0]["intent"] == "track_order"
    assert outcome["results"][0]["confidence"] >= intents.CONFIDENT
    assert fake_openai.classify_requests == []


def test_an_unsure_message_goes_to_the_remote_model_among_the_workspaces_intents_only(
    agent, fake_openai
):
    fake_openai.classify_as(["track_order"])

    outcome = classify(agent, SURE, UNSURE)

    [asked] = fake_openai.classify_requests
    assert asked["response_format"] == {"type": "json_object"}
    prompt = asked["messages"][0]["content"]
    assert "delivery_period, product_question, track_order" in prompt and "unknown" in prompt
    assert UNSURE in asked["messages"][-1]["content"]
    assert f'"{SURE}' not in json.dumps(asked)  # only what the local classifier was unsure of
    sure, unsure = outcome["results"]
    assert sure["intent"] == "track_order" and "classified_by" not in sure
    assert (unsure["intent"], unsure["local_intent"]) == ("track_order", "delivery_period")
    assert unsure["confidence"] is None  # no calibrated figure: no rule lets it out alone
    assert unsure["classified_by"] == "remote" and unsure["local_confidence"] < intents.CONFIDENT
    assert outcome["second_opinion"]["asked"] is True
    tiers = list(CostEntry.objects.order_by("pk").values_list("tier", flat=True))
    assert tiers == ["local", "remote"]  # the second opinion is in the ledger


def test_a_remote_model_that_agrees_confirms_the_local_guess_and_its_confidence(agent, fake_openai):
    local = classify(agent, UNSURE)["results"][0]
    fake_openai.classify_as([local["intent"]])

    confirmed = classify(agent, UNSURE)["results"][0]

    assert confirmed["intent"] == local["intent"]
    assert confirmed["confidence"] == local["confidence"]
    assert confirmed["confirmed_by"] == "remote"


def test_a_remote_model_that_names_no_intent_leaves_the_local_guess_to_a_person(agent, fake_openai):
    fake_openai.classify_as(["unknown"])

    result = classify(agent, UNSURE)["results"][0]

    assert result["intent"] != "unknown" and result["confidence"] < intents.CONFIDENT
    assert result["remote_said"] == "unknown"


def test_an_answer_that_is_not_json_is_no_opinion_and_is_not_sent_back_to_the_model(
    agent, fake_openai
):
    fake_openai.classify_as(Reply("It is about the parcel, I think."))

    outcome = classify(agent, UNSURE)

    assert len(fake_openai.classify_requests) == 1  # no repair request
    assert outcome["second_opinion"]["asked"] is False
    assert "not the JSON object asked for" in outcome["second_opinion"]["reason"]
    assert outcome["results"][0]["confidence"] < intents.CONFIDENT


def test_with_no_remote_model_the_local_guess_stands_and_says_why(agent, settings):
    settings.AIOS_LLM_BASE_URL = ""

    outcome = classify(agent, UNSURE)

    assert outcome["results"][0]["confidence"] < intents.CONFIDENT
    assert outcome["second_opinion"]["asked"] is False
    assert "no remote endpoint" in outcome["second_opinion"]["reason"]


def test_a_remote_model_that_is_down_never_makes_the_reply_wait(agent, fake_openai):
    fake_openai.down = True

    outcome = classify(agent, UNSURE)

    assert fake_openai.refused >= 1
    assert outcome["second_opinion"]["asked"] is False
    assert outcome["results"][0]["confidence"] < intents.CONFIDENT


def test_a_workspace_with_its_own_provider_gets_the_question_on_its_small_model(
    agent, workspace, fake_openai
):
    own = FakeOpenAI()
    try:
        model_services.provider_save(
            workspace=workspace,
            name="own",
            base_url=own.base_url,
            model_small="mistral-small",
            is_default=True,
        )
        own.classify_as(["track_order"])

        result = classify(agent, UNSURE)["results"][0]

        assert result["intent"] == "track_order"
        assert [r["model"] for r in own.classify_requests] == ["mistral-small"]
        assert fake_openai.classify_requests == []
    finally:
        own.close()
