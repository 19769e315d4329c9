"""Run by `aios up` before the children start: migrate, and with --demo create the demo workspace.

Prints one JSON line last: the demo login (password only when it was just created).
"""

from __future__ import annotations

import json
import sys

import django


def main(argv: list[str]) -> int:
    django.setup()
    from django.core.management import call_command

    from agents.services import demo_agents_ensure
    from agents.tasks import intent_examples_seed
    from aios_site.accounts.services import demo_ensure

    call_command("migrate", interactive=False, verbosity=0)
    if "--demo" in argv:
        demo = demo_ensure()
        demo_agents_ensure(workspace=demo.workspace)
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
