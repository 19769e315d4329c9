"""Run by `aios up` before the children start: migrate, and with --demo create the demo workspace.

Prints one JSON line last: the demo login (password only when it was just created).
"""

from __future__ import annotations

import json
import sys

import django


def demo_setup(*, reset_password: bool = False):
    """The demo workspace with its owner, agents and memory; idempotent."""
    from agents.services import demo_agents_ensure
    from aios_site.accounts.services import demo_ensure
    from memory.services import memory_demo_ensure

    demo = demo_ensure(reset_password=reset_password)
    demo_agents_ensure(workspace=demo.workspace)
    memory_demo_ensure(workspace=demo.workspace)
    return demo


def main(argv: list[str]) -> int:
    django.setup()
    from django.core.management import call_command

    from agents.tasks import intent_examples_seed

    call_command("migrate", interactive=False, verbosity=0)
    if "--demo" in argv:
        demo = demo_setup()
        # Embedding 540 examples takes seconds: a worker does it once it is up.
        intent_examples_seed.delay(demo.workspace.pk)
        print(
            json.dumps(
                {"email": demo.email, "password": demo.password, "workspace": demo.workspace.slug}
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
