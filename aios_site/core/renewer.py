"""Lease renewal from a process of its own, so that it cannot be starved.

A heartbeat thread needs the GIL to beat: a step stuck in one long C call (a regular
expression backtracking, a big JSON parse) holds it, the beat stops, and another worker takes
a run that is in fact alive. Here each worker process has one small renewer process, started
on first use, which renews what the worker holds with its own connection, on its own clock:

- while the worker is alive and **not stopped**: a worker paused by SIGSTOP (or a debugger, or
  a frozen VM's process) stops being renewed, so its leases expire and its late writes are
  fenced off by their token — a paused worker must lose its work, a busy one must not;
- for at most `AIOS_LEASE_MAX_HOLD_SECONDS` per hold, so a worker hung for ever lets go too;
- never blocking on a row lock for long (`lock_timeout`), so a held row cannot stall it.

The worker talks to it over a pipe (one line of JSON per hold or drop): a write to a pipe is
one system call, with no thread of ours that would need the GIL in turn. The renewer exits
when the pipe closes, which is when its worker exits or dies.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
import time
from typing import Any

ENV_DSN = "AIOS_RENEWER_DSN"


class Renewer:
    """The worker's side: `hold(key, sql, params, every)` renews by running `sql` every
    `every` seconds until `drop(key)`."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def hold(self, key: str, sql: str, params: list[Any], *, every: float) -> None:
        self._send({"op": "hold", "key": key, "sql": sql, "params": params, "every": every})

    def drop(self, key: str) -> None:
        if self._process is not None and self._pid == os.getpid():
            self._send({"op": "drop", "key": key})

    def _send(self, message: dict[str, Any]) -> None:
        line = (json.dumps(message, default=str) + "\n").encode()
        with self._lock:
            process = self._running()
            try:
                os.write(process.stdin.fileno(), line)
            except (BrokenPipeError, OSError):  # it died: start another, which holds anew
                self._process = None
                process = self._running()
                os.write(process.stdin.fileno(), line)

    def _running(self) -> subprocess.Popen:
        if self._process is None or self._pid != os.getpid() or self._process.poll() is not None:
            # A forked child (a Celery pool process) needs a renewer of its own.
            self._process = _start()
            self._pid = os.getpid()
        return self._process

    def stop(self) -> None:
        if self._process is not None and self._pid == os.getpid():
            self._process.stdin.close()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None


def _start() -> subprocess.Popen:
    from django.conf import settings
    from django.db import connection

    env = {
        **os.environ,
        ENV_DSN: _dsn(connection.get_connection_params()),
        "AIOS_RENEWER_PARENT": str(os.getpid()),
        "AIOS_RENEWER_MAX_HOLD": str(settings.AIOS_LEASE_MAX_HOLD_SECONDS),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "aios_site.core.renewer"],
        stdin=subprocess.PIPE,
        env=env,
        close_fds=True,
    )


def _dsn(params: dict[str, Any]) -> str:
    from psycopg.conninfo import make_conninfo

    keep = ("host", "port", "dbname", "user", "password", "sslmode")
    return make_conninfo(**{name: params[name] for name in keep if params.get(name)})


_renewer = Renewer()
atexit.register(_renewer.stop)


def renewer() -> Renewer:
    return _renewer


# -- the renewer process ----------------------------------------------------------------------


def _stopped(pid: int) -> bool:
    """True when the process is stopped (SIGSTOP, a tracer): its state in /proc is T or t."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False  # no /proc (not Linux): renew while alive
    return state in (b"T", b"t")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Holds:
    def __init__(self, max_hold: float) -> None:
        self.max_hold = max_hold
        self.items: dict[str, dict[str, Any]] = {}

    def take(self, message: dict[str, Any]) -> None:
        if message["op"] == "hold":
            now = time.monotonic()
            self.items[message["key"]] = {**message, "since": now, "due": now + message["every"]}
        else:
            self.items.pop(message["key"], None)

    def due(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        for key in [k for k, hold in self.items.items() if now - hold["since"] > self.max_hold]:
            del self.items[key]  # held far too long: the worker is hung, let it go
        return [hold for hold in self.items.values() if hold["due"] <= now]

    def next_wait(self) -> float:
        if not self.items:
            return 5.0
        return max(0.0, min(hold["due"] for hold in self.items.values()) - time.monotonic())


def _serve() -> None:  # pragma: no cover - runs in the renewer process (tests drive it whole)
    import psycopg

    parent = int(os.environ["AIOS_RENEWER_PARENT"])
    holds = _Holds(float(os.environ.get("AIOS_RENEWER_MAX_HOLD", "900")))
    stdin, buffer, db = sys.stdin.buffer.fileno(), b"", None
    while True:
        ready, _, _ = select.select([stdin], [], [], min(holds.next_wait(), 1.0))
        if ready:
            chunk = os.read(stdin, 65536)
            if not chunk:
                return  # the worker is gone
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.strip():
                    holds.take(json.loads(line))
        if not holds.items and db is not None:
            db.close()  # nothing held: no connection kept (a database may be dropped)
            db = None
        if not _alive(parent):
            return
        if _stopped(parent):
            continue  # paused: its leases must run out
        due = holds.due()
        if not due:
            continue
        try:
            if db is None or db.closed:
                db = psycopg.connect(os.environ[ENV_DSN], autocommit=True)
                db.execute("SET lock_timeout = '1s'")
            for hold in due:
                db.execute(hold["sql"], hold["params"])
                hold["due"] = time.monotonic() + hold["every"]
        except psycopg.Error:
            if db is not None:
                db.close()
            db = None  # PostgreSQL away for a moment: try again on the next round


if __name__ == "__main__":
    _serve()
