"""Intent classification, trained and evaluated on the shared Bitext customer-support data."""

from __future__ import annotations

from collections import defaultdict

import pytest

from agents.llm import intents
from tests.helpers import bitext_rows

TRAIN, HELD_OUT = 20, 8


@pytest.fixture(scope="module")
def split():
    by_intent: dict[str, list[str]] = defaultdict(list)
    for row in bitext_rows():
        by_intent[row["intent"]].append(row["instruction"])
    # Every 5th message, so train and held-out rows cover the same variety of phrasing.
    train = [(text, intent) for intent, texts in by_intent.items() for text in texts[::5][:TRAIN]]
    held_out = [
        (text, intent) for intent, texts in by_intent.items() for text in texts[2::5][:HELD_OUT]
    ]
    return train, held_out


@pytest.fixture(scope="module")
def model(split):
    return intents.train(split[0])


def test_held_out_messages_get_their_intent(model, split):
    _, held_out = split

    predicted = intents.classify(model, [text for text, _ in held_out])
    accuracy = sum(
        p["intent"] == intent for p, (_, intent) in zip(predicted, held_out, strict=True)
    )
    accuracy /= len(held_out)

    print(
        f"intent accuracy on {len(held_out)} held-out Bitext messages "
        f"({len(model.labels)} intents, {TRAIN} examples each): {accuracy:.1%}"
    )
    assert len(model.labels) == 27
    assert accuracy >= 0.75


def test_a_message_about_something_else_is_unknown(model):
    [result] = intents.classify(model, ["What is the best temperature to bake sourdough bread?"])

    assert result["intent"] == "unknown"
    assert result["confidence"] < intents.DEFAULT_THRESHOLD


def test_a_clear_request_is_classified_with_confidence(model):
    [result] = intents.classify(model, ["I want my money back for this order"])

    assert result["intent"] == "get_refund" and result["confidence"] >= intents.DEFAULT_THRESHOLD
