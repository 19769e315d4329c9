from __future__ import annotations

import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from agents import selectors
from agents.services import models as model_services
from aios_site.accounts.models import Workspace


class Command(BaseCommand):
    help = (
        "A workspace's intent examples (`aios intents seed|import|list --workspace SLUG`): "
        "seed gives it the shipped Bitext examples, import adds a CSV with text,intent columns."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["seed", "import", "list"])
        parser.add_argument("file", nargs="?", help="for import: a CSV with text,intent columns")
        parser.add_argument("--workspace", required=True)

    def handle(self, *args, action: str, file: str | None, workspace: str, **options) -> None:
        found = Workspace.objects.filter(slug=workspace).first()
        if found is None:
            raise CommandError(f"no workspace {workspace!r}")
        if action == "seed":
            added = model_services.intent_examples_seed(workspace=found)
            self.stdout.write(f"added {added} examples" if added else "it has examples already")
        elif action == "import":
            added = model_services.intent_examples_add(
                workspace=found, examples=_read(file), source=f"import:{Path(file).name}"
            )
            self.stdout.write(f"added {added} examples")
        for row in selectors.intent_counts(workspace_id=found.pk):
            self.stdout.write(f"{row['intent']:<28} {row['examples']}")


def _read(file: str | None) -> list[tuple[str, str]]:
    if not file or not Path(file).is_file():
        raise CommandError("import needs a CSV file with text,intent columns")
    with Path(file).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"text", "intent"} <= set(rows[0]):
        raise CommandError("the CSV needs the columns text and intent")
    return [(row["text"], row["intent"]) for row in rows]
