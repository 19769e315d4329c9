from __future__ import annotations

from django.core.management.base import BaseCommand

from aios_site.prepare import demo_setup


class Command(BaseCommand):
    help = "Create the demo workspace 'Demo Shop', its owner, agents and memory (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--reset-password",
            action="store_true",
            help="set and print a new password for the demo owner",
        )

    def handle(self, *args, reset_password: bool = False, **options) -> None:
        demo = demo_setup(reset_password=reset_password)
        self.stdout.write(f"workspace: {demo.workspace.name} ({demo.workspace.slug})")
        if demo.password:
            self.stdout.write(f"login: {demo.email}  password: {demo.password}")
        else:
            self.stdout.write(f"login: {demo.email}  (unchanged; --reset-password sets a new one)")
