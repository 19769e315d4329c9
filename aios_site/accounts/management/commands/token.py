from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from aios_site.accounts.models import Role, Workspace
from aios_site.accounts.services import membership_ensure, token_create, user_ensure


class Command(BaseCommand):
    help = "API tokens: `token create --workspace SLUG --email EMAIL [--role ROLE] [--name NAME]`."

    def add_arguments(self, parser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="print a new bearer token for /api/v1")
        create.add_argument("--workspace", required=True, help="workspace slug")
        create.add_argument("--email", required=True)
        create.add_argument(
            "--role",
            choices=Role.values,
            default=None,
            help="role for a new member, or the new role of an existing one "
            "(default for a new member: operator)",
        )
        create.add_argument("--name", default="cli")

    def handle(self, *args, action: str, **options) -> None:
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"no workspace with slug {options['workspace']!r}")
        try:
            with transaction.atomic():
                user = user_ensure(email=options["email"])
                is_member = user.memberships.filter(workspace=workspace).exists()
                role = options["role"] or (None if is_member else Role.OPERATOR)
                membership = membership_ensure(workspace=workspace, user=user, role=role)
                _, raw = token_create(membership=membership, name=options["name"])
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stderr.write(
            f"token for {user.email} in {workspace.slug} ({membership.role}); shown once:"
        )
        self.stdout.write(raw)
