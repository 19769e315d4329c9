"""The processes a chaos run supervises: two `aios worker`s (restarted whenever one dies)
and `aios beat`, on the test database, each with its output in a file."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.agents.processes import ENGINE_ENV
from tests.helpers import served_database_url

# Fast clocks (recovery in seconds), one torch thread per process (two cores, shared), and
# due posts published every two seconds.
CHAOS_ENV = {
    **ENGINE_ENV,
    "AIOS_LOCAL_THREADS": "1",
    "AIOS_CONTENT_PUBLISH_SECONDS": "2",
}


class Process:
    """`aios <role>` in a process group of its own, so a kill takes its pool with it."""

    def __init__(self, role: str, *args: str, env: dict[str, str], log: Path) -> None:
        self.log = log
        environ = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "aios_site.settings.base",
            "DATABASE_URL": served_database_url(),
            **CHAOS_ENV,
            **env,
        }
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "aios_site.cli", role, *args],
                env=environ,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def ready(self, pattern: str) -> bool:
        return pattern in self.output()

    def output(self, since: int = 0) -> str:
        """What it printed (from character `since` on)."""
        return self.log.read_text(errors="replace")[since:]

    def kill(self) -> None:
        """SIGKILL to the whole group: the main process and whatever pool it left."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive:
            os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        self.kill()  # and any pool process the main one left behind


class Workers:
    """Workers (two, of two pool processes each, unless told otherwise); one found dead is
    replaced, with its group."""

    def __init__(
        self, logs: Path, *, env: dict[str, str], count: int = 2, concurrency: int = 2
    ) -> None:
        self.logs, self.env, self.concurrency, self.started = logs, env, concurrency, 0
        self.processes = [self._start() for _ in range(count)]

    def _start(self) -> Process:
        self.started += 1
        log = self.logs / f"worker-{self.started}.log"
        return Process("worker", "-c", str(self.concurrency), env=self.env, log=log)

    def supervise(self) -> int:
        """Replaces the workers that died; how many."""
        replaced = 0
        for n, process in enumerate(self.processes):
            if not process.alive:
                process.kill()
                self.processes[n] = self._start()
                replaced += 1
        return replaced

    def restart(self, *, env: dict[str, str]) -> None:
        """Every worker again, with another environment (chaos off, say)."""
        for process in self.processes:
            process.kill()
        self.env = env
        self.processes = [self._start() for _ in self.processes]

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not all(process.ready("ready.") for process in self.processes):
            assert time.monotonic() < deadline, "the workers did not start"
            self.supervise()
            time.sleep(0.2)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


class KillLog:
    """The kills the fault points recorded (aios_site/chaos.py), one JSON line each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()

    def kills(self) -> list[dict]:
        lines = self.path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def __len__(self) -> int:
        return len(self.kills())

    def by_point(self) -> Counter:
        return Counter(kill["point"] for kill in self.kills())

    def with_worker(self) -> int:
        return sum(1 for kill in self.kills() if kill["main"])
