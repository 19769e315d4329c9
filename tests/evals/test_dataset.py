"""The shipped support-messages eval set: its loader refuses bad lines, and its labels keep
the rules its README states. None of these tests needs the database."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from agents.evals import datasets
from agents.evals.datasets import DatasetError, EvalItem, counts, load, read

MAJOR = ("en", "es", "fr", "de", "it", "pt", "nl", "pl")
MINOR = ("ja", "tr")
# Intents whose reply can go out with no person: templated from the order or a policy, or
# grounded in a product's facts.
ROUTINE = {
    "track_order",
    "delivery_period",
    "delivery_options",
    "check_payment_methods",
    "check_refund_policy",
    "product_question",
}


@pytest.fixture(scope="module")
def items() -> list[EvalItem]:
    return load()


def facts(handle: str) -> str:
    """What the store says about a product, the shop's own cost left out: a cost is never a
    fact a reply may state."""
    product = dict(datasets.store_products()[handle])
    product["variants"] = [
        {key: value for key, value in variant.items() if key != "cost"}
        for variant in product["variants"]
    ]
    return json.dumps(product, ensure_ascii=False).casefold()


def good_line(**changes) -> str:
    row = {
        "id": "en-001",
        "language": "en",
        "intent": "track_order",
        "subject": "Where is my order?",
        "body": "Has #1016 shipped?",
        "order": "#1016",
        "product": None,
        "must_contain": [],
        "must_not_contain": [],
        "risk": "low",
        "auto_ok": True,
        "notes": "",
    }
    row.update(changes)
    return json.dumps(row, ensure_ascii=False)


def test_the_shipped_set_has_ten_languages_and_170_messages(items):
    by_language = counts(items)["language"]
    assert len(items) >= 170
    assert set(by_language) == set(MAJOR + MINOR)
    assert all(by_language[language] >= 16 for language in MAJOR), by_language
    assert all(by_language[language] >= 8 for language in MINOR), by_language


def test_the_set_covers_twelve_intents_and_25_product_questions_in_every_language(items):
    by_intent = counts(items)["intent"]
    assert len(by_intent) >= 12
    assert by_intent["product_question"] >= 25
    asked_in = {item.language for item in items if item.intent == "product_question"}
    assert asked_in == set(MAJOR + MINOR)


def test_ids_are_unique_and_name_their_language(items):
    assert len({item.id for item in items}) == len(items)
    assert all(item.id.startswith(f"{item.language}-") for item in items)


def test_every_product_named_is_in_the_demo_store(items):
    handles = set(datasets.store_products())
    assert {item.product for item in items if item.product} <= handles


def test_every_product_question_names_its_product(items):
    assert all(item.product for item in items if item.intent == "product_question")


def test_every_must_contain_fact_is_in_the_products_facts(items):
    wrong = [
        (item.id, fact)
        for item in items
        if item.product
        for fact in item.must_contain
        if fact.casefold() not in facts(item.product)
    ]
    assert wrong == []


def test_a_message_about_no_product_requires_no_fact(items):
    # The shop's policies are not in the data, so the only facts to require are a product's.
    assert [item.id for item in items if not item.product and item.must_contain] == []


def test_high_risk_items_are_never_auto_ok(items):
    assert [item.id for item in items if item.risk == "high" and item.auto_ok] == []


def test_only_low_risk_routine_messages_are_auto_ok(items):
    wrong = [
        item.id
        for item in items
        if item.auto_ok and (item.risk != "low" or item.intent not in ROUTINE)
    ]
    assert wrong == []


def test_a_product_question_is_auto_ok_only_when_the_facts_answer_it(items):
    wrong = [
        item.id
        for item in items
        if item.intent == "product_question" and item.auto_ok and not item.must_contain
    ]
    assert wrong == []


def test_injection_attempts_are_unknown_high_risk_and_never_auto_ok(items):
    unknown = [item for item in items if item.intent == "unknown"]
    assert len(unknown) >= len(MAJOR)
    assert all(item.risk == "high" and not item.auto_ok for item in unknown)


def test_complaints_and_refund_demands_always_go_to_a_person(items):
    for item in items:
        if item.intent in {"complaint", "get_refund", "track_refund", "payment_issue"}:
            assert not item.auto_ok, item.id
        if item.intent in {"get_refund", "track_refund", "check_cancellation_fee"}:
            assert item.risk == "high", item.id
        if item.intent == "complaint":
            assert item.risk in {"medium", "high"}, item.id


def test_no_reply_may_state_what_it_must_state(items):
    assert [item.id for item in items if set(item.must_contain) & set(item.must_not_contain)] == []


def test_counts_are_by_language_and_by_intent(items):
    result = counts(items)
    assert sum(result["language"].values()) == sum(result["intent"].values()) == len(items)
    assert result["intent"] == Counter(item.intent for item in items)


def test_a_good_line_loads_as_a_frozen_item(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text(good_line() + "\n\n", encoding="utf-8")
    [item] = read(path)
    assert item.order == "#1016" and item.must_contain == ()
    with pytest.raises(AttributeError):
        item.risk = "high"


def test_a_line_with_an_unknown_intent_is_refused_with_its_line_number(tmp_path):
    path = tmp_path / "set.jsonl"
    lines = [good_line(), good_line(id="en-002", intent="where_is_my_parcel")]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"line 2: unknown intent 'where_is_my_parcel'"):
        read(path)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (good_line(language="xx"), "unknown language 'xx'"),
        (good_line(product="silk-scarf"), "product 'silk-scarf' is not in the demo store"),
        (good_line(order="1016"), "order must be like"),
        (good_line(risk="urgent"), "risk must be one of"),
        (good_line(auto_ok="yes"), "auto_ok must be true or false"),
        (good_line(must_contain="linen"), "must_contain must be a list"),
        (good_line(extra=1), "unknown field"),
        ("{not json", "not JSON"),
    ],
)
def test_a_bad_line_is_refused_with_its_line_number(tmp_path, line, problem):
    path = tmp_path / "set.jsonl"
    path.write_text(good_line() + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=rf"^line 2: .*{problem}"):
        read(path)


def test_a_line_missing_a_field_is_refused_naming_the_field(tmp_path):
    row = json.loads(good_line())
    del row["risk"]
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"line 1: missing field\(s\) risk"):
        read(path)


def test_an_id_used_twice_is_refused(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text(good_line() + "\n" + good_line() + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"line 2: id 'en-001' is used twice"):
        read(path)
