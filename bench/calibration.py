"""What the local tier gets right on the shipped multilingual eval set, and the confidence at
which a templated reply may go out without a person.

    python bench/calibration.py [--json PATH]

On agents/evals/data/support-messages.jsonl (177 messages, 10 languages, labels reviewed):
language detection accuracy per language; intent accuracy of the local classifier trained on
the shipped seed, per language; then, for every confidence threshold, how many messages the
policy would let out by themselves (a templated intent, the classifier at least that sure, a
low-risk message) and how many of those were right (the intent is the labelled one and the
set says the message may be answered without a person). The chosen threshold is the lowest
with precision >= 98 %: what `AUTO_SEND_CONFIDENCE` and the default rule use.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

THRESHOLDS = [round(0.40 + 0.05 * step, 2) for step in range(11)]
TARGET_PRECISION = 0.98


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    options = parser.parse_args()

    import os

    import django

    # Nothing here touches a database or Redis: the settings only need their addresses.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aios_site.settings.base")
    os.environ.setdefault("DATABASE_URL", "postgres://unused@127.0.0.1:1/unused")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")
    django.setup()
    from runtime import machine, write_json

    from agents.evals import datasets
    from agents.llm import intents, local
    from approvals import policy
    from approvals.policy import DEFAULT_RULES
    from catalog.drafts import reply_risk

    items = datasets.load()
    texts = [f"{item.subject}\n{item.body}" for item in items]
    detected = local.detect_language([item.body for item in items], default="en")
    model = intents.train(intents.seed_rows())
    predicted = intents.classify(model, texts)

    print(machine())
    found = [d["language"] == i.language for d, i in zip(detected, items, strict=True)]
    languages = _per_language(items, found)
    print(f"language detected right: {_share(languages)} — {_by(languages)}")
    right = [p["intent"] == i.intent for p, i in zip(predicted, items, strict=True)]
    by_language = _per_language(items, right)
    print(
        f"intent right (local, seed of {len(intents.seed_rows())}): {_share(by_language)} — "
        f"{_by(by_language)}"
    )

    risky = [
        reply_risk(message=t, intent=p["intent"], draft_failed=False)
        for t, p in zip(texts, predicted, strict=True)
    ]
    rule = next(
        r
        for r in DEFAULT_RULES
        if r["decision"] == "auto_approve" and r["effector"] == "catalog.send_reply"
    )
    print(f"the default rule {rule['name']!r}, with its confidence condition set to:")
    curve = []
    for threshold in THRESHOLDS:
        at = _with_confidence(rule, threshold)
        sent = [
            (item, guess)
            for item, guess, (risk, reasons) in zip(items, predicted, risky, strict=True)
            if policy.decide([at], _facts(guess, risk, reasons)).decision == "auto_approve"
        ]
        good = sum(guess["intent"] == item.intent and item.auto_ok for item, guess in sent)
        curve.append(
            {
                "threshold": threshold,
                "sent": len(sent),
                "right": good,
                "precision": round(good / len(sent), 4) if sent else None,
            }
        )
        wrong = [
            f"{i.id}:{g['intent']}" for i, g in sent if not (g["intent"] == i.intent and i.auto_ok)
        ]
        shown = f"{good / len(sent):.1%}" if sent else "—"
        print(
            f"  sure ≥ {threshold:.2f}: {len(sent):3d} sent by themselves, {shown} right"
            + (f" (wrong: {', '.join(wrong[:6])})" if wrong else "")
        )
    chosen = next((p for p in curve if p["sent"] and p["precision"] >= TARGET_PRECISION), None)
    if chosen:
        print(
            f"lowest threshold at ≥ {TARGET_PRECISION:.0%}: {chosen['threshold']:.2f} "
            f"({chosen['sent']} of {len(items)} messages automated, {chosen['precision']:.1%} "
            "right)"
        )
    else:
        print(f"no threshold reaches {TARGET_PRECISION:.0%} precision: nothing goes out alone")
    write_json(
        options.json,
        {
            "items": len(items),
            "language_accuracy": _ratio(languages),
            "intent_accuracy": _ratio(by_language),
            "intent_by_language": _by(by_language),
            "curve": curve,
            "chosen": chosen,
        },
    )


def _with_confidence(rule: dict, threshold: float) -> dict:
    """The rule with its confidence condition (added if it has none) at `threshold`."""
    kept = [c for c in rule["conditions"] if c["fact"] != "confidence"]
    return {**rule, "conditions": [*kept, {"fact": "confidence", "op": ">=", "value": threshold}]}


def _facts(guess: dict, risk: str, reasons: list[str]) -> dict:
    """What the policy reads of a templated reply to this message (catalog.send_reply)."""
    return {
        "effector": "catalog.send_reply",
        "intent": guess["intent"],
        "tier": "template",
        "confidence": guess["confidence"],
        "checks_failed": 0,
        "failed_drafts": 0,
        "risk": risk,
        "risk_reasons": reasons,
    }


def _per_language(items, outcomes) -> dict[str, list[bool]]:
    grouped: dict[str, list[bool]] = defaultdict(list)
    for item, ok in zip(items, outcomes, strict=True):
        grouped[item.language].append(bool(ok))
    return grouped


def _ratio(grouped) -> float:
    every = [ok for oks in grouped.values() for ok in oks]
    return round(sum(every) / len(every), 4)


def _share(grouped) -> str:
    every = [ok for oks in grouped.values() for ok in oks]
    return f"{sum(every)}/{len(every)} ({sum(every) / len(every):.0%})"


def _by(grouped) -> str:
    return ", ".join(f"{lang} {sum(oks)}/{len(oks)}" for lang, oks in sorted(grouped.items()))


if __name__ == "__main__":
    main()
