"""Intent classification on the local tier: accuracy and latency on held-out Bitext messages.

    python bench/intents.py [--train 20] [--held-out 40] [--json PATH]

Trains on `--train` messages per intent (every 5th message) and classifies `--held-out`
other messages per intent; prints accuracy, latency per message one at a time, and
throughput in batches. Then the demo shop's customer messages in English, Spanish, French
and German (catalog/data/demo-messages.json, each tagged with what it is about) against the
shipped seed (Bitext plus our examples in those languages): how many land in the right
family of intents, per language. With `--json PATH`, the figures are also written to PATH.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=20)
    parser.add_argument("--held-out", type=int, default=40)
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    options = parser.parse_args()

    from runtime import machine, write_json

    from agents.llm import intents, local
    from tests.helpers import bitext_rows

    by_intent: dict[str, list[str]] = defaultdict(list)
    for row in bitext_rows():
        by_intent[row["intent"]].append(row["instruction"])
    train = [(t, i) for i, texts in by_intent.items() for t in texts[::5][: options.train]]
    held_out = [(t, i) for i, texts in by_intent.items() for t in texts[2::5][: options.held_out]]
    local.embed(["warm up"])

    started = time.perf_counter()
    model = intents.train(train)
    trained_in = time.perf_counter() - started
    started = time.perf_counter()
    predicted = intents.classify(model, [text for text, _ in held_out])
    batch_seconds = time.perf_counter() - started
    singles = []
    for text, _ in held_out[:100]:
        one = time.perf_counter()
        intents.classify(model, [text])
        singles.append((time.perf_counter() - one) * 1000)

    correct = sum(p["intent"] == i for p, (_, i) in zip(predicted, held_out, strict=True))
    unknown = sum(p["intent"] == "unknown" for p in predicted)
    print(machine())
    print(
        f"{len(model.labels)} intents, {options.train} examples each, trained in {trained_in:.2f} s"
    )
    print(
        f"accuracy on {len(held_out)} held-out messages: {correct / len(held_out):.1%} "
        f"({unknown} unknown)"
    )
    print(
        f"one message at a time: p50 {statistics.median(singles):.1f} ms; "
        f"batched: {len(held_out) / batch_seconds:.0f} messages/s"
    )
    hits, scored, by_language = _shop_messages(intents)
    write_json(
        options.json,
        {
            "intents": len(model.labels),
            "train_per_intent": options.train,
            "held_out": len(held_out),
            "accuracy": round(correct / len(held_out), 4),
            "unknown": unknown,
            "train_s": round(trained_in, 2),
            "single_p50_ms": round(statistics.median(singles), 2),
            "batched_per_s": round(len(held_out) / batch_seconds, 1),
            "shop_messages": {"right_family": hits, "of": scored, "by_language": by_language},
        },
    )


# What each demo message is about → the intents that answer it (product questions: none of
# the shop intents, so "unknown" or anything not templated is right; injections are left out).
FAMILIES = {
    "order_status": {"track_order"},
    "shipping": {"delivery_period", "delivery_options"},
    "return": {"check_refund_policy", "get_refund"},
    "refund": {"get_refund", "track_refund", "check_refund_policy"},
}


def _shop_messages(intents) -> tuple[int, int, dict[str, str]]:
    import json

    messages = json.loads((ROOT / "catalog/data/demo-messages.json").read_text())["messages"]
    scored = [m for m in messages if m["topic"] in FAMILIES]
    model = intents.train(intents.seed_rows())
    predicted = intents.classify(model, [f"{m['subject']}\n{m['body']}" for m in scored])
    by_language: dict[str, list[bool]] = defaultdict(list)
    for message, result in zip(scored, predicted, strict=True):
        by_language[message["language"]].append(result["intent"] in FAMILIES[message["topic"]])
    hits = sum(sum(v) for v in by_language.values())
    print(
        f"demo shop messages (seed: {len(intents.seed_rows())} examples): {hits}/{len(scored)} "
        "in the right family; "
        + ", ".join(f"{lang} {sum(v)}/{len(v)}" for lang, v in sorted(by_language.items()))
    )
    return hits, len(scored), {k: f"{sum(v)}/{len(v)}" for k, v in sorted(by_language.items())}


if __name__ == "__main__":
    main()
