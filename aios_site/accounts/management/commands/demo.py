from __future__ import annotations

from django.core.management.base import BaseCommand

from agents.services import demo_agents_ensure
from aios_site.accounts.services import demo_ensure


class Command(BaseCommand):
    help = "Create the demo workspace 'Demo Shop' and its owner (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--reset-password",
            action="store_true",
            help="set and print a new password for the demo owner",
        )

    def handle(self, *args, reset_password: bool = False, **options) -> None:
        demo = demo_ensure(reset_password=reset_password)
        demo_agents_ensure(workspace=demo.workspace)
        self.stdout.write(f"workspace: {demo.workspace.name} ({demo.workspace.slug})")
        if demo.password:
            self.stdout.write(f"login: {demo.email}  password: {demo.password}")
        else:
            self.stdout.write(f"login: {demo.email}  (unchanged; --reset-password sets a new one)")
