"""Intent classification on the local tier: labelled examples, embedded, and two similarities.

Each intent is scored by the better of two cosine similarities: to the mean of its examples
(its centroid), and to its single nearest example. The centroid is robust when examples are
many and alike; the nearest example is what lets a message in Spanish or German find its
intent from a handful of examples in that language, where the centroid is dominated by
hundreds in English. A message takes the best-scoring intent, with that score as its
confidence, or "unknown" when even the best is below the threshold (a message about
something else entirely).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agents.llm import local

UNKNOWN = "unknown"
DEFAULT_THRESHOLD = 0.45
# How sure the local classifier must be before its intent is trusted without a second
# opinion: on the shipped multilingual eval set (bench/calibration.py, bench/README.md) every
# templated reply it let out at or above this was right, and below it a third to a half were
# wrong. Below it the remote small model is asked (the gateway's cascade), and the default
# policy never sends a reply by itself.
CONFIDENT = 0.70


@dataclass(frozen=True)
class IntentModel:
    labels: tuple[str, ...]
    centroids: tuple[tuple[float, ...], ...]  # unit length, one per label
    # Every example as (index of its label, unit vector); none means centroids only.
    examples: tuple[tuple[int, Sequence[float]], ...] = ()
    _matrices: dict = field(default_factory=dict, compare=False, repr=False)

    def scores(self, vectors: list[list[float]]):
        """(texts x labels) similarities: per label, the better of centroid and nearest
        example."""
        import torch

        if not self._matrices:
            self._matrices["centroids"] = torch.tensor(self.centroids, dtype=torch.float32)
            if self.examples:
                self._matrices["labels"] = torch.tensor([i for i, _ in self.examples])
                self._matrices["examples"] = torch.tensor(
                    [list(v) for _, v in self.examples], dtype=torch.float32
                )
        texts = torch.tensor(vectors, dtype=torch.float32)
        scores = texts @ self._matrices["centroids"].T
        if self.examples:
            nearest = texts @ self._matrices["examples"].T
            index = self._matrices["labels"].expand(len(vectors), -1)
            best = torch.full_like(scores, -1.0).scatter_reduce(1, index, nearest, reduce="amax")
            scores = torch.maximum(scores, best)
        return scores


def train(examples: Iterable[tuple[str, str]]) -> IntentModel:
    """From (text, intent) pairs."""
    examples = list(examples)
    vectors = local.embed([text for text, _ in examples])
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0] * local.EMBEDDING_DIMENSIONS)
    for (_, label), vector in zip(examples, vectors, strict=True):
        sums[label] = [a + b for a, b in zip(sums[label], vector, strict=True)]
    labels = tuple(sorted(sums))
    index = {label: i for i, label in enumerate(labels)}
    return IntentModel(
        labels=labels,
        centroids=tuple(_unit(sums[label]) for label in labels),
        examples=tuple(
            (index[label], vector) for (_, label), vector in zip(examples, vectors, strict=True)
        ),
    )


def classify(
    model: IntentModel, texts: Sequence[str], *, threshold: float = DEFAULT_THRESHOLD
) -> list[dict[str, object]]:
    """For each text: the intent, its confidence, and the runner-up."""
    if not texts:
        return []
    results = []
    for row in model.scores(local.embed(texts)).tolist():
        scores = sorted(zip(row, model.labels, strict=True), reverse=True)
        (best, label), (second, runner_up) = scores[0], scores[1] if len(scores) > 1 else (0, "")
        results.append(
            {
                "intent": label if best >= threshold else UNKNOWN,
                "confidence": round(best, 4),
                "runner_up": runner_up,
                "runner_up_confidence": round(second, 4),
            }
        )
    return results


def _unit(vector: list[float]) -> tuple[float, ...]:
    norm = sum(x * x for x in vector) ** 0.5 or 1.0
    return tuple(x / norm for x in vector)


# -- a workspace's intents, from its labelled examples in pgvector ------------------------------

SEED_FILE = Path(__file__).parent / "data" / "intent-examples.csv"
# Our own examples in the shop languages besides English, so that a Spanish, French or
# German "where is my order?" finds its intent from the first day.
SHOP_SEED_FILE = Path(__file__).parent / "data" / "intent-examples-shop.csv"
# Shoppers' questions about a product (its size, material, colour, fit), from Amazon's ePQA:
# the `product_question` intent, answered from the product's facts rather than a template.
PRODUCT_SEED_FILE = Path(__file__).parent / "data" / "intent-examples-epqa.csv"
_workspace_models: dict[int, tuple[tuple, IntentModel | None]] = {}


def workspace_model(workspace_id: int) -> IntentModel | None:
    """The workspace's centroids (averaged by PostgreSQL) and examples, loaded again only
    when its examples changed; None when it has none."""
    from django.db.models import Avg, Count, Max
    from pgvector.django import VectorField

    from agents.models import IntentExample

    examples = IntentExample.objects.filter(workspace_id=workspace_id)
    stamp = tuple(examples.aggregate(n=Count("pk"), last=Max("pk")).values())
    cached = _workspace_models.get(workspace_id)
    if cached and cached[0] == stamp:
        return cached[1]
    rows = (
        examples.values("intent")
        .annotate(
            centroid=Avg(
                "embedding", output_field=VectorField(dimensions=local.EMBEDDING_DIMENSIONS)
            )
        )
        .order_by("intent")
    )
    model = None
    if stamp[0]:
        labels = tuple(row["intent"] for row in rows)
        index = {label: i for i, label in enumerate(labels)}
        model = IntentModel(
            labels=labels,
            centroids=tuple(_unit([float(x) for x in row["centroid"]]) for row in rows),
            examples=tuple(
                (index[intent], [float(x) for x in vector])
                for intent, vector in examples.values_list("intent", "embedding")
            ),
        )
    _workspace_models[workspace_id] = (stamp, model)
    return model


def seed_rows() -> list[tuple[str, str]]:
    """The shipped examples: (text, intent) from Bitext's e-commerce support data, product
    questions from ePQA, and ours in the shop languages."""
    rows = []
    for path in (SEED_FILE, PRODUCT_SEED_FILE, SHOP_SEED_FILE):
        with path.open(newline="", encoding="utf-8") as handle:
            rows += [(row["text"], row["intent"]) for row in csv.DictReader(handle)]
    return rows


def examples_add(*, workspace_id: int, examples: Iterable[tuple[str, str]], source: str) -> int:
    """Embeds and stores labelled examples (in batches); returns how many were added."""
    from agents.models import IntentExample

    examples = [(text.strip(), intent.strip()) for text, intent in examples if text.strip()]
    added = 0
    for start in range(0, len(examples), 256):
        chunk = examples[start : start + 256]
        vectors = local.embed([text for text, _ in chunk])
        IntentExample.objects.bulk_create(
            IntentExample(
                workspace_id=workspace_id, intent=intent, text=text, embedding=vector, source=source
            )
            for (text, intent), vector in zip(chunk, vectors, strict=True)
        )
        added += len(chunk)
    return added


def examples_seed(*, workspace_id: int) -> int:
    """Gives a workspace the shipped examples unless it has examples already."""
    from agents.models import IntentExample

    if IntentExample.objects.filter(workspace_id=workspace_id).exists():
        return 0
    return examples_add(workspace_id=workspace_id, examples=seed_rows(), source="bitext-seed")
