from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from agents.evals import runner
from aios_site.accounts.models import Workspace

SHOWN = (
    ("items", "items"),
    ("language right", "language_accuracy"),
    ("intent right", "intent_accuracy"),
    ("sent by themselves", "auto_sent"),
    ("of those, right", "auto_precision"),
    ("drafts that failed a check", "checks_failed"),
    ("product answers with every fact", "grounded"),
    ("said what it must not", "said_what_it_must_not"),
    ("cost", "cost"),
    ("latency p50 ms", "latency_p50_ms"),
    ("latency p95 ms", "latency_p95_ms"),
    ("errors", "errors"),
)


class Command(BaseCommand):
    help = (
        "Run a labelled dataset through the support agent, proposing and sending nothing, and "
        "score it (`aios eval support-messages --workspace SLUG [--provider P] [--compare P2]`). "
        "Without --provider: the local tier alone. Datasets: the shipped sets, or `history` "
        "(the workspace's decided reply cards of the last 30 days)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("dataset", help=", ".join(runner.dataset_names()))
        parser.add_argument("--workspace", required=True)
        parser.add_argument("--provider", default="", help="a provider on the Models page")
        parser.add_argument("--compare", default=None, help="a second configuration to compare")
        parser.add_argument("--limit", type=int, default=None, help="the first N items only")
        parser.add_argument(
            "--json", dest="json_path", default=None, help="also write the scores to this file"
        )

    def handle(self, *args, dataset, workspace, provider, compare, limit, json_path, **options):
        found = Workspace.objects.filter(slug=workspace).first()
        if found is None:
            raise CommandError(f"no workspace {workspace!r}")
        configurations = [provider] + ([compare] if compare is not None else [])
        try:
            evals = [self._one(found, dataset, p, limit) for p in configurations]
        except runner.EvalError as error:
            raise CommandError(str(error)) from None
        self._table(evals)
        if len(evals) == 2:
            self._differences(evals)
        if json_path:
            Path(json_path).write_text(_as_json(evals), encoding="utf-8")

    def _one(self, workspace, dataset, provider, limit):
        started = runner.eval_start(
            workspace=workspace,
            dataset=dataset,
            provider=provider,
            started_by="aios eval",
            limit=limit,
        )
        self.stdout.write(f"{started.label}: {started.items} items …")
        return runner.eval_execute(eval_run_id=started.pk, limit=limit)

    def _table(self, evals) -> None:
        for line in scorecard(evals):
            self.stdout.write(line)

    def _differences(self, evals) -> None:
        rows = [row for row in runner.compared(*evals) if row["differs"]]
        self.stdout.write(f"\n{len(rows)} items answered differently")
        for row in rows[:20]:
            first, second = row["first"], row["second"]
            self.stdout.write(
                f"  {row['item_id']}: {first.predicted_intent}/{first.decision} vs "
                f"{second.predicted_intent if second else '-'}/{second.decision if second else '-'}"
            )


SHARES = {"language_accuracy", "intent_accuracy", "auto_precision"}


def scorecard(evals) -> list[str]:
    """The evals' scores side by side, a line per figure (also bench/evals.py's output)."""
    width = max(len(label) for label, _ in SHOWN) + 2
    lines = ["".ljust(width) + "".join(e.label[:28].ljust(30) for e in evals)]
    for label, key in SHOWN:
        values = [_shown(key, e.scores) for e in evals]
        lines.append(label.ljust(width) + "".join(v.ljust(30) for v in values))
    return lines


def _shown(key: str, scores: dict) -> str:
    if key == "grounded":
        return f"{scores.get('grounded_right')} of {scores.get('grounded_items')}"
    value = scores.get(key)
    if value is None:
        return "—"
    return f"{value:.1%}" if key in SHARES else str(value)


def _as_json(evals) -> str:
    return json.dumps(
        [{"id": e.pk, "label": e.label, "dataset": e.dataset, "scores": e.scores} for e in evals],
        indent=2,
    )
