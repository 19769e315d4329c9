"""`aios up`: embedded services, migrations, then daphne + a Celery worker + beat, supervised.

The launcher owns every process it starts. Each child runs in its own session so a stop
can signal the child's whole process tree (Celery's pool included); children also get
SIGTERM if the launcher itself dies. On SIGINT or SIGTERM everything is stopped within
STOP_GRACE + a couple of seconds, and the embedded services last. An embedded service
that dies is started again in place, as a child that dies is.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from aios_site import cli, embedded, paths
from aios_site.parentdeath import terminate_with_parent

STOP_GRACE = 6.0  # seconds a child gets to stop cleanly before it is killed
READY_TIMEOUT = 120.0
RESTART_WINDOW = 60.0
MAX_RESTARTS = 5  # in RESTART_WINDOW seconds, per child, before `aios up` gives up
PREFIX_WIDTH = 6
ALL_INTERFACES = {"0.0.0.0", "::"}  # noqa: S104 - names to recognise, not to bind

_print_lock = threading.Lock()


class LaunchError(RuntimeError):
    """Startup cannot go on; the message is the one line shown to the user."""


def emit(line: str, *, stream=None) -> None:
    """One line of output. A closed terminal or pipe must never interrupt starting or stopping."""
    with _print_lock, contextlib.suppress(OSError):
        print(line, file=stream or sys.stdout, flush=True)


def say(message: str, *, error: bool = False) -> None:
    emit(f"aios: {message}", stream=sys.stderr if error else sys.stdout)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    restarts: deque = field(default_factory=deque)

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=terminate_with_parent,
        )
        threading.Thread(target=self._relay, args=(self.process,), daemon=True).start()

    def _relay(self, process: subprocess.Popen) -> None:
        """Copies the child's output to ours, each line prefixed with the child's name."""
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            emit(f"{self.name:<{PREFIX_WIDTH}}| {line}")
        process.stdout.close()

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def signal_group(self, signum: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def may_restart(self, now: float) -> bool:
        return _may_restart(self.restarts, now)


def _may_restart(restarts: deque, now: float) -> bool:
    """One more restart, unless there were MAX_RESTARTS in the last RESTART_WINDOW seconds."""
    while restarts and now - restarts[0] > RESTART_WINDOW:
        restarts.popleft()
    restarts.append(now)
    return len(restarts) <= MAX_RESTARTS


def parse_options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="aios up", description="Start AIOS on this machine.")
    parser.add_argument("--demo", action="store_true", help="create the demo workspace")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="default: $AIOS_DATA_DIR or the per-user data directory",
    )
    parser.add_argument("--workers", type=int, default=2, help="Celery worker concurrency")
    parser.add_argument(
        "--web-processes",
        type=int,
        default=cli.WEB_PROCESSES,
        help="daphne processes sharing the port",
    )
    parser.add_argument(
        "--no-simulator",
        action="store_true",
        help="with --demo: do not run the store simulator that plays the demo shop",
    )
    parser.add_argument(
        "--simulator-rate", type=float, default=0.5, help="demo shop events a second"
    )
    parser.add_argument(
        "--simulator-scenario",
        choices=("shop-day", "steady"),
        default="shop-day",
        help="shop-day: one day of a shop, then it says it is done; steady: a shop that "
        "keeps selling and writing for as long as the demo runs",
    )
    return parser.parse_args(argv)


def up(argv: list[str]) -> int:
    options = parse_options(argv)
    if options.data_dir is not None:
        os.environ["AIOS_DATA_DIR"] = str(options.data_dir.expanduser().resolve())
    return Launcher(options, paths.data_dir()).run()


class Launcher:
    def __init__(self, options: argparse.Namespace, data_dir: Path) -> None:
        self.options = options
        self.data_dir = data_dir
        self.stop_requested = threading.Event()
        self.services: embedded.EmbeddedServices | None = None
        self.children: list[Child] = []
        self.ready_seconds = 0.0
        self.stop_signal: str | None = None
        self.simulator_port = 0
        self.service_restarts: dict[str, deque] = {}

    # -- the whole life -------------------------------------------------------------------

    def run(self) -> int:
        started = time.monotonic()
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        try:
            service_env = self._start_services()
            demo = self._prepare_database(service_env)
            self._start_children(service_env, demo)
            self._wait_until_ready(started)
            self._announce(demo)
            return self._supervise()
        except LaunchError as error:
            say(str(error), error=True)
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            self._shutdown()

    def _request_stop(self, signum: int, frame) -> None:
        # Only flag it: a handler that printed could wait on the output lock its own thread holds.
        self.stop_signal = self.stop_signal or signal.Signals(signum).name
        self.stop_requested.set()

    def _check_stop(self) -> None:
        if self.stop_requested.is_set():
            raise KeyboardInterrupt

    # -- startup --------------------------------------------------------------------------

    def _start_services(self) -> dict[str, str]:
        _ensure_port_free(self.options.host, self.options.port)
        try:
            configured = embedded.configured_urls()
            if configured:
                say("using DATABASE_URL and REDIS_URL; no embedded services")
                return configured
            self.services = embedded.start(self.data_dir)
        except embedded.ServiceStartError as error:
            raise LaunchError(str(error)) from error
        self._check_stop()
        say(f"embedded PostgreSQL (pgvector) and Valkey are up; data in {self.data_dir}")
        return self.services.environ()

    @property
    def simulating(self) -> bool:
        return self.options.demo and not self.options.no_simulator

    def _prepare_database(self, service_env: dict[str, str]) -> dict | None:
        """Migrations and the demo workspace, in a child so this process stays free of Django."""
        argv = [sys.executable, "-m", "aios_site.prepare"] + (
            ["--demo"] if self.options.demo else []
        )
        if self.simulating:
            self.simulator_port = _free_port()
            argv += ["--simulator-url", f"http://127.0.0.1:{self.simulator_port}"]
        result = subprocess.run(
            argv, env=self._child_env(service_env), capture_output=True, text=True, check=False
        )
        self._check_stop()
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise LaunchError(f"database preparation failed: {last}")
        if self.services is not None:
            self.services.secure()  # the audit table to its own owner (aios_site/dbroles.py)
        say("database migrated")
        return json.loads(result.stdout.strip().splitlines()[-1]) if self.options.demo else None

    def _child_env(self, service_env: dict[str, str]) -> dict[str, str]:
        env = {
            **os.environ,
            **service_env,
            "PYTHONUNBUFFERED": "1",
            "AIOS_DATA_DIR": str(self.data_dir),
        }
        env["DJANGO_SETTINGS_MODULE"] = os.environ.get("AIOS_SETTINGS", cli.SETTINGS_MODULE)
        host = self.options.host
        if host not in ALL_INTERFACES and "AIOS_ALLOWED_HOSTS" not in os.environ:
            env["AIOS_ALLOWED_HOSTS"] = ",".join(sorted({"127.0.0.1", "localhost", "[::1]", host}))
        return env

    def _start_children(self, service_env: dict[str, str], demo: dict | None) -> None:
        env = self._child_env(service_env)
        self.children = [
            Child("web", self._web_command(), env),
            Child("worker", cli.worker_command(concurrency=self.options.workers), env),
            Child("beat", cli.beat_command(), env),
        ]
        if demo and demo.get("simulator"):
            self.children.append(Child("shop", self._simulator_command(demo["simulator"]), env))
        for child in self.children:
            child.start()

    def _web_command(self) -> list[str]:
        host, port, processes = self.options.host, self.options.port, self.options.web_processes
        return cli.web_command(host=host, port=port, processes=processes)

    def _simulator_command(self, shop: dict[str, str]) -> list[str]:
        """The store simulator playing the demo shop: its products arrive, stock moves and
        customers write, through the same webhooks and API a real shop and helpdesk use."""
        host = "127.0.0.1" if self.options.host in ALL_INTERFACES else self.options.host
        return [
            sys.executable,
            "-m",
            "catalog.simulator",
            "--target",
            f"http://{_url_host(host)}:{self.options.port}",
            # name=value: a random secret may begin with "-", which argparse would take for
            # an option of its own ("expected one argument").
            f"--secret={shop['secret']}",
            "--shop",
            shop["shop"],
            f"--access-token={shop['access_token']}",
            f"--api-token={shop['api_token']}",
            "--port",
            str(self.simulator_port),
            "--scenario",
            self.options.simulator_scenario,
            "--rate",
            str(self.options.simulator_rate),
        ]

    def _wait_until_ready(self, started: float) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            self._check_stop()
            for child in self.children:
                code = child.exit_code()
                if code is not None:
                    raise LaunchError(
                        f"{child.name} exited during startup (code {code}); its output is above"
                    )
            health = self._health()
            if health and health.get("workers", 0) >= 1:
                self.ready_seconds = time.monotonic() - started
                return
            time.sleep(0.2)
        raise LaunchError(f"not healthy after {READY_TIMEOUT:.0f}s; see the output above")

    def _health(self) -> dict | None:
        host = "127.0.0.1" if self.options.host in ALL_INTERFACES else self.options.host
        url = f"http://{_url_host(host)}:{self.options.port}/api/v1/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def _announce(self, demo: dict | None) -> None:
        url = f"http://{_url_host(self.options.host)}:{self.options.port}/"
        say(f"ready in {self.ready_seconds:.1f}s at {url}  (Ctrl-C stops everything)")
        if self.options.host in ALL_INTERFACES and "AIOS_ALLOWED_HOSTS" not in os.environ:
            say("listening on all interfaces: set AIOS_ALLOWED_HOSTS to the names clients use")
        if demo is None:
            say("log in with your account; `aios up --demo` makes a demo login")
        elif demo["password"]:
            say(f"demo login: {demo['email']}  password: {demo['password']}  (shown once)")
        else:
            say(
                f"demo login: {demo['email']}  (password shown when it was created; "
                "`aios demo --reset-password` sets a new one)"
            )
        if demo and demo.get("simulator"):
            say(
                f"the demo shop {demo['simulator']['shop']} is played by the store simulator "
                f"at http://127.0.0.1:{self.simulator_port} (--no-simulator turns it off)"
            )

    # -- running --------------------------------------------------------------------------

    def _supervise(self) -> int:
        while not self.stop_requested.wait(0.5):
            # The services first: a child that exited because its database went away
            # would only exit again.
            if not self._revive_services():
                return 1
            for child in self.children:
                code = child.exit_code()
                if code is None:
                    continue
                if not child.may_restart(time.monotonic()):
                    say(f"{child.name} keeps exiting (code {code}); giving up", error=True)
                    return 1
                say(f"{child.name} exited (code {code}); restarting it", error=True)
                child.start()
        return 0

    def _revive_services(self) -> bool:
        """Restarts an embedded service that exited, in place: its URL stays the same, so
        web, workers and beat reconnect by themselves. False when one keeps failing."""
        if self.services is None:
            return True
        for name in self.services.down():
            if not _may_restart(self.service_restarts.setdefault(name, deque()), time.monotonic()):
                say(f"embedded {name} keeps exiting; giving up", error=True)
                return False
            say(f"embedded {name} exited; restarting it", error=True)
            try:
                self.services.restart(name)
            except embedded.ServiceStartError as error:
                say(f"{error}; trying again", error=True)
                continue
            say(f"embedded {name} is back")
        return True

    # -- shutdown -------------------------------------------------------------------------

    def _shutdown(self) -> None:
        # Further signals must not interrupt the shutdown itself.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if self.stop_signal:
            say(f"stopping ({self.stop_signal})")
        started_anything = bool(self.children) or self.services is not None
        for child in self.children:
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for child in self.children:
            if child.process is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            # Kill what is left of the group: a child that ignored SIGTERM, or its pool.
            child.signal_group(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=2)
        if self.services is not None:
            self.services.stop()
            self.services = None
        if started_anything:
            say("stopped")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _ensure_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise LaunchError(
                    f"port {port} on {host} is already in use; stop what uses it or pass --port"
                ) from error
            raise LaunchError(f"cannot listen on {host}:{port}: {error.strerror}") from error
