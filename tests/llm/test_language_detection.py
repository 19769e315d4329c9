"""Language detection over every language a small shop may meet, and the names prompts and
cards give those languages. The detector is lingua's, really loaded from its wheel."""

# The messages are in their own scripts: a letter that looks Latin is meant.
# ruff: noqa: RUF001

from __future__ import annotations

import pytest

from agents.llm import local, templating
from catalog import checks

# "My order has not arrived yet. When will it be sent?", as customers write it.
MESSAGES = {
    "ja": "注文した商品がまだ届いていません。いつ発送されますか？",
    "zh": "我的订单什么时候发货？我已经等了一个星期了。",
    "ko": "주문한 상품이 아직 도착하지 않았습니다. 언제 배송되나요?",
    "ar": "لم يصل طلبي بعد. متى سيتم شحنه؟",
    "tr": "Siparişim hâlâ gelmedi. Ne zaman kargoya verilecek?",
    "ru": "Мой заказ ещё не пришёл. Когда его отправят?",
    "uk": "Моє замовлення досі не прийшло. Коли його відправлять?",
    "hi": "मेरा ऑर्डर अभी तक नहीं आया है। यह कब भेजा जाएगा?",
    "el": "Η παραγγελία μου δεν έχει φτάσει ακόμα. Πότε θα αποσταλεί;",
    "pl": "Moje zamówienie jeszcze nie dotarło. Kiedy zostanie wysłane?",
    "cs": "Moje objednávka ještě nedorazila. Kdy bude odeslána?",
    "sv": "Min beställning har inte kommit än. När skickas den?",
}


@pytest.mark.parametrize("code", MESSAGES)
def test_a_customer_message_is_detected_in_its_own_language(code):
    [detected] = local.detect_language([MESSAGES[code]], default="en")

    assert detected["language"] == code
    assert "fallback" not in detected
    assert detected["confidence"] >= local.MIN_LANGUAGE_CONFIDENCE


def test_japanese_and_turkish_messages_of_the_eval_set_are_detected():
    from agents.evals import datasets

    items = [item for item in datasets.load() if item.language in ("ja", "tr")]

    detected = local.detect_language([item.body for item in items], default="en")

    assert len(items) == 20
    assert [d["language"] for d in detected] == [item.language for item in items]


@pytest.mark.parametrize(
    "query",
    ["order status", "where is my order", "refund", "track my order", "order #1019", "hello"],
)
def test_a_short_english_query_is_english_or_the_shops_language(query):
    [detected] = local.detect_language([query], default="fr")

    if detected.get("fallback"):
        assert detected["language"] == "fr"
    else:
        assert detected["language"] == "en"


@pytest.mark.parametrize(
    "code, line",
    [
        ("es", "¿Dónde está mi pedido?"),
        ("es", "Quiero un reembolso"),
        ("de", "Wo ist meine Bestellung?"),
        ("de", "Danke schön"),
        ("fr", "Où est ma commande ?"),
        ("fr", "Je veux un remboursement"),
    ],
)
def test_a_short_line_in_a_shop_language_is_still_detected(code, line):
    [detected] = local.detect_language([line], default="en")

    assert detected["language"] == code and "fallback" not in detected


def test_every_detected_language_is_one_the_detector_was_built_for():
    texts = [*MESSAGES.values(), "order status", "Kan ik betalen met iDEAL?", "", "1234 !!"]

    detected = local.detect_language(texts, default="xx")

    assert {d["language"] for d in detected} <= {*local.SUPPORTED_LANGUAGES, "xx"}


@pytest.mark.parametrize("code", local.SUPPORTED_LANGUAGES)
def test_every_supported_language_has_a_real_english_name(code):
    name = checks.language_name(code)

    assert name != code and name[0].isupper() and name.replace(" ", "").isalpha()


def test_chinese_is_named_though_djangos_table_has_it_only_by_script():
    assert checks.language_name("zh") == "Chinese"
    assert checks.language_name("zh-hans") == "Simplified Chinese"
    assert checks.language_name("zh-TW") == "Traditional Chinese"


def test_a_japanese_customers_template_is_in_the_shops_language_and_says_so():
    [detected] = local.detect_language([MESSAGES["ja"]], default="de")

    written_in = templating.template_language(detected["language"], shop_languages=("de",))
    check = checks.language_check(detected["language"], None, written_in=written_in)

    assert written_in == "de"
    assert not check.ok and check.detail == "no Japanese template: written in German"
