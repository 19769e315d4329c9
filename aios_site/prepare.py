"""Run by `aios up` before the children start: migrate, and with --demo create the demo workspace.

Prints one JSON line last: the demo login (password only when it was just created), and with
`--simulator-url URL` what the store simulator needs to play the demo shop.
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
    from aios_site.queues import send

    call_command("migrate", interactive=False, verbosity=0)
    if "--demo" in argv:
        demo = demo_setup()
        # Embedding the ~570 seed examples takes seconds: a worker does it once it is up.
        send(intent_examples_seed, demo.workspace.pk)
        login = {"email": demo.email, "password": demo.password, "workspace": demo.workspace.slug}
        if "--simulator-url" in argv:
            from catalog.services import demo_store_ensure

            url = argv[argv.index("--simulator-url") + 1]
            login["simulator"] = demo_store_ensure(workspace=demo.workspace, simulator_url=url)
        print(json.dumps(login))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
