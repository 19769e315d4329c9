"""Intent classification on the local tier: nearest centroid over embedded labelled examples.

Each intent is the mean of its examples' embeddings; a message takes the intent whose
centroid is most similar, with that cosine similarity as its confidence, or "unknown"
when even the best is below the threshold (a message about something else entirely).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agents.llm import local

UNKNOWN = "unknown"
DEFAULT_THRESHOLD = 0.45


@dataclass(frozen=True)
class IntentModel:
    labels: tuple[str, ...]
    centroids: tuple[tuple[float, ...], ...]  # unit length, one per label


def train(examples: Iterable[tuple[str, str]]) -> IntentModel:
    """From (text, intent) pairs."""
    examples = list(examples)
    vectors = local.embed([text for text, _ in examples])
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0] * local.EMBEDDING_DIMENSIONS)
    for (_, label), vector in zip(examples, vectors, strict=True):
        sums[label] = [a + b for a, b in zip(sums[label], vector, strict=True)]
    labels = tuple(sorted(sums))
    return IntentModel(labels=labels, centroids=tuple(_unit(sums[label]) for label in labels))


def classify(
    model: IntentModel, texts: Sequence[str], *, threshold: float = DEFAULT_THRESHOLD
) -> list[dict[str, object]]:
    """For each text: the intent, its confidence, and the runner-up."""
    results = []
    for vector in local.embed(texts):
        scores = sorted(
            (
                (sum(a * b for a, b in zip(vector, centroid, strict=True)), label)
                for label, centroid in zip(model.labels, model.centroids, strict=True)
            ),
            reverse=True,
        )
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
