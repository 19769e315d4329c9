from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from agents.models import Run
from agents.services import Conflict, run_advance, run_replay


class Command(BaseCommand):
    help = "Replay a finished run from its journal and print the verdict (`aios replay RUN`)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("run_id", type=int)

    def handle(self, *args, run_id: int, **options) -> None:
        original = Run.objects.filter(pk=run_id).first()
        if original is None:
            raise CommandError(f"no run {run_id}")
        try:
            replay = run_replay(run=original)
        except Conflict as error:
            raise CommandError(str(error)) from error
        # A replay calls nothing external, so it runs right here; a worker that gets the
        # message too finds the run already claimed or finished.
        deadline = time.monotonic() + 120
        while not replay.is_finished and time.monotonic() < deadline:
            run_advance(run_id=replay.pk)
            replay.refresh_from_db()
            if not replay.is_finished:
                time.sleep(0.1)
        verdict = replay.replay_verdict
        self.stdout.write(
            f"replay run {replay.pk} of run {run_id}: "
            f"{'identical' if verdict == 'identical' else 'diverged'}"
        )
        if verdict != "identical":
            self.stdout.write(json.dumps(verdict, indent=2, default=str))
            raise CommandError("the replay diverged from the original run")
