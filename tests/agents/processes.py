"""Real Celery worker and beat processes on the test database, for execution and fault tests."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import psutil

from tests.helpers import served_database_url

# Fast clocks, so recovery is seen in seconds rather than minutes.
ENGINE_ENV = {
    "AIOS_RUN_STALE_SECONDS": "3",
    "AIOS_LEASE_SECONDS": "3",
    "AIOS_RUN_QUEUED_STALE_SECONDS": "5",
    "AIOS_SWEEP_SECONDS": "1",
    "AIOS_DB_CONN_MAX_AGE": "0",
}


class CeleryProcess:
    def __init__(self, *args: str, ready: str, env: dict[str, str] | None = None) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "aios_site.settings.base",
            "DATABASE_URL": served_database_url(),
            **ENGINE_ENV,
            **(env or {}),
        }
        self.lines: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aios_site.cli", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(ready)

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            self._lines.put(line.rstrip())

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.5)
            except queue.Empty:
                assert self.process.poll() is None, "\n".join(self.lines[-40:])
                continue
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no {pattern!r} in:\n" + "\n".join(self.lines[-40:]))

    def pause(self) -> None:
        """SIGSTOP to the whole process group: alive, holding what it held, doing nothing."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL to the whole process group: the worker and its pool die mid-whatever."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGCONT)  # a paused worker cannot hear SIGTERM
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
        for child in psutil.Process().children(recursive=True):  # nothing of ours lingers
            if child.pid == self.process.pid:
                child.kill()


def start_worker(concurrency: int = 1, env: dict[str, str] | None = None) -> CeleryProcess:
    return CeleryProcess("worker", "-c", str(concurrency), ready=r"ready\.", env=env)


def start_beat(env: dict[str, str] | None = None) -> CeleryProcess:
    return CeleryProcess("beat", ready=r"beat: Starting", env=env)
