from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from agents.evals import runner
from agents.llm.prompts import PROMPTS
from aios_site.accounts.models import Workspace

SHOWN = (
    ("items", "items"),
    ("language right", "language_accuracy"),
    ("intent right", "intent_accuracy"),
    ("sent by themselves", "auto_sent"),
    ("of those, right", "auto_precision"),
    ("drafts that failed a check", "checks_failed"),
    ("with every fact they must state", "grounded"),
    ("said what it must not", "said_what_it_must_not"),
    ("cost", "cost"),
    ("latency p50 ms", "latency_p50_ms"),
    ("latency p95 ms", "latency_p95_ms"),
    ("errors", "errors"),
)


class Command(BaseCommand):
    help = (
        "Run a labelled dataset through its agent (messages: the support agent; products: the "
        "description writer; briefs: the content writer), proposing, sending and changing "
        "nothing, and "
        "score it (`aios eval support-messages --workspace SLUG [--provider P] [--compare P2]`). "
        "Without --provider: the local tier alone. A second configuration differs from the "
        "first by its provider (--compare), its tier policy (--compare-tier-policy) or its "
        "prompt versions (--compare-prompt). Datasets: the shipped sets, or `history` (the "
        "workspace's decided reply cards of the last 30 days)."
    )

    def add_arguments(self, parser) -> None:
        presets = ", ".join(name for name in runner.TIER_POLICIES if name)
        parser.add_argument("dataset", help=", ".join(runner.dataset_names()))
        parser.add_argument("--workspace", required=True)
        parser.add_argument("--provider", default="", help="a provider on the Models page")
        parser.add_argument(
            "--tier-policy",
            default=None,
            help=f"over the agent's: a policy as JSON, or one of {presets}",
        )
        parser.add_argument(
            "--prompt",
            action="append",
            default=[],
            metavar="PROMPT=VERSION",
            help=f"a prompt version, e.g. reply=2026-12 (prompts: {', '.join(PROMPTS)})",
        )
        parser.add_argument("--compare", default=None, help="a second provider to compare")
        parser.add_argument("--compare-tier-policy", default=None, help="a second tier policy")
        parser.add_argument(
            "--compare-prompt", action="append", default=[], metavar="PROMPT=VERSION"
        )
        parser.add_argument("--limit", type=int, default=None, help="the first N items only")
        parser.add_argument(
            "--json", dest="json_path", default=None, help="also write the scores to this file"
        )

    def handle(self, *args, dataset, workspace, limit, json_path, **options):
        found = Workspace.objects.filter(slug=workspace).first()
        if found is None:
            raise CommandError(f"no workspace {workspace!r}")
        try:
            configurations = _configurations(options)
            evals = [self._one(found, dataset, p, c, limit) for p, c in configurations]
        except runner.EvalError as error:
            raise CommandError(str(error)) from None
        self._table(evals)
        if len(evals) == 2:
            self._differences(evals)
        if json_path:
            Path(json_path).write_text(_as_json(evals), encoding="utf-8")

    def _one(self, workspace, dataset, provider, configured, limit):
        started = runner.eval_start(
            workspace=workspace,
            dataset=dataset,
            provider=provider,
            configured=configured,
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


def _configurations(options) -> list[tuple[str, dict]]:
    """The first configuration, and the second where any --compare option asks for one: the
    first's, changed where the --compare options say."""
    provider = options["provider"]
    policy, prompts = _policy(options["tier_policy"]), _prompts(options["prompt"])
    first = (provider, runner.configuration(tier_policy=policy, prompts=prompts))
    compared = (options["compare"], options["compare_tier_policy"], options["compare_prompt"])
    if compared == (None, None, []):
        return [first]
    second_policy = policy if compared[1] is None else _policy(compared[1])
    second_prompts = {**prompts, **_prompts(compared[2])}
    second = (
        provider if compared[0] is None else compared[0],
        runner.configuration(tier_policy=second_policy, prompts=second_prompts),
    )
    if second == first:
        raise runner.EvalError("the second configuration is the same as the first")
    return [first, second]


def _policy(given: str | None):
    """A preset's name as it is; anything else must be a JSON object."""
    if given is None or given in runner.TIER_POLICIES:
        return given
    try:
        return json.loads(given)
    except json.JSONDecodeError:
        raise runner.EvalError(
            f"--tier-policy is a preset ({', '.join(p for p in runner.TIER_POLICIES if p)}) "
            "or a JSON object"
        ) from None


def _prompts(given: list[str]) -> dict[str, str]:
    chosen = {}
    for pair in given:
        prompt, _, version = pair.partition("=")
        if not version:
            raise runner.EvalError(f"--prompt takes PROMPT=VERSION, not {pair!r}")
        chosen[prompt.strip()] = version.strip()
    return chosen


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
        [
            {
                "id": e.pk,
                "label": e.label,
                "dataset": e.dataset,
                "provider": e.provider,
                "configuration": e.configuration,
                "scores": e.scores,
            }
            for e in evals
        ],
        indent=2,
    )
