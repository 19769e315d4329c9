from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from aios_site.accounts.models import Workspace
from approvals.audit import audit_verify


class Command(BaseCommand):
    help = (
        "`aios audit verify [--workspace SLUG]`: recomputes the audit log's hash chains and "
        "names the first entry that was edited, removed or reordered (exit status 1)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["verify"])
        parser.add_argument("--workspace", help="only this workspace's chain")

    def handle(self, *args, action: str, workspace: str | None, **options) -> None:
        workspace_id = None
        if workspace:
            found = Workspace.objects.filter(slug=workspace).first()
            if found is None:
                raise CommandError(f"no workspace {workspace!r}")
            workspace_id = found.pk
        verdict = audit_verify(workspace_id=workspace_id)
        if not verdict.ok:
            slug = Workspace.objects.filter(pk=verdict.workspace_id).values_list("slug", flat=True)
            raise CommandError(
                f"audit log broken in workspace {slug.first()!r} at entry {verdict.seq}: "
                f"{verdict.problem} ({verdict.checked} entries verified before it)"
            )
        self.stdout.write(f"audit log intact: {verdict.checked} entries verified")
