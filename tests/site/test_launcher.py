"""`aios up` really started and really stopped: embedded services, web, worker and beat."""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest
import redis

from tests.helpers import free_port

pytestmark = pytest.mark.slow

CLEAN_ENV = {
    k: v
    for k, v in os.environ.items()
    if k
    not in {
        "DATABASE_URL",
        "REDIS_URL",
        "DJANGO_SETTINGS_MODULE",
        "AIOS_SECRET_KEY",
        "AIOS_DATA_DIR",
    }
}


class Up:
    """One `aios up` process with its output collected line by line."""

    started: list[Up] = []  # cleaned up after each test, whatever happened in it

    def __init__(self, data_dir: Path, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aios_site.cli",
                "up",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
                "--workers",
                "1",
                *args,
            ],
            env=CLEAN_ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # A group of its own, as a shell gives a job: a terminal's Ctrl-C reaches all of it.
            start_new_session=True,
        )
        self.seen: list[psutil.Process] = []
        Up.started.append(self)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            self._queue.put(line.rstrip())

    def wait_for(self, pattern: str, timeout: float = 120) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                assert self.process.poll() is None, "\n".join(self.lines)
                continue
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no line matching {pattern!r}:\n" + "\n".join(self.lines))

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def every_process(self, data_dir: Path) -> list[psutil.Process]:
        """The launcher, all its descendants, and the (daemonised) PostgreSQL server tree."""
        launcher = psutil.Process(self.process.pid)
        processes = [launcher, *launcher.children(recursive=True)]
        postmaster = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        processes += [
            psutil.Process(postmaster),
            *psutil.Process(postmaster).children(recursive=True),
        ]
        self.seen += processes
        return processes

    def stop(self, signum: int) -> float:
        started = time.monotonic()
        self.process.send_signal(signum)
        self.process.wait(timeout=20)
        return time.monotonic() - started


@pytest.fixture(autouse=True)
def _no_launcher_outlives_its_test():
    yield
    while Up.started:
        up = Up.started.pop()
        if up.process.poll() is None:
            up.process.send_signal(signal.SIGINT)
            try:
                up.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                up.process.kill()
        for process in up.seen:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


def _alive(processes: list[psutil.Process]) -> list[str]:
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{process.pid} {process.name()}")
        except psutil.NoSuchProcess:
            pass
    return alive


def _get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _log_in(up: Up, email: str, password: str) -> str:
    """Logs in through the login form like a browser and returns the page it lands on."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    form = opener.open(up.url("/login/"), timeout=10).read().decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    body = urllib.parse.urlencode(
        {"username": email, "password": password, "csrfmiddlewaretoken": csrf}
    ).encode()
    request = urllib.request.Request(
        up.url("/login/"), data=body, headers={"Referer": up.url("/login/")}
    )
    with opener.open(request, timeout=10) as response:
        return response.geturl() + "\n" + response.read().decode()


def test_up_serves_the_demo_and_ctrl_c_then_sigterm_leave_no_process_behind(tmp_path):
    data_dir = tmp_path / "data"
    up = Up(data_dir, "--demo")
    email, password = up.wait_for(r"demo login: (\S+)  password: (\S+)").groups()

    status, health = _get_json(up.url("/api/v1/healthz"))
    assert status == 200 and health["database"] == "ok" and health["redis"] == "ok"
    assert health["workers"] >= 1
    landing = _log_in(up, email, password)
    assert landing.startswith(up.url("/w/demo/board/")) and "Demo Shop" in landing
    processes = up.every_process(data_dir)
    assert len(processes) >= 6  # launcher, valkey, web, worker (+ pool), beat, postgres

    worker = next(p for p in processes if p.ppid() == up.process.pid and "worker" in p.cmdline())
    valkey = redis.Redis.from_url(json.loads((data_dir / "runtime.json").read_text())["redis_url"])
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool die at once
    up.wait_for(r"aios: worker exited \(code -9\); restarting it")
    deadline = time.monotonic() + 60
    # The restarted worker keeps the same name; its live key now holds its own pid.
    while not any(
        int(valkey.get(key) or 0) not in {0, worker.pid}
        for key in valkey.scan_iter(match="aios:worker:*")
    ):
        assert time.monotonic() < deadline, "the restarted worker never came up"
        time.sleep(0.3)
    assert _get_json(up.url("/api/v1/healthz"))[1]["workers"] >= 1
    processes = up.every_process(data_dir) + processes
    rival = Up(data_dir)
    rival.process.wait(timeout=30)
    assert rival.process.returncode == 1
    assert rival.lines == [
        f"aios: another aios process (`aios up` or a command) is using {data_dir}"
    ]

    assert up.stop(signal.SIGINT) < 10
    assert up.process.returncode == 0
    assert _alive(processes) == []
    prefixes = {line.split("|")[0].strip() for line in up.lines if "|" in line}
    assert {"web", "worker", "beat"} <= prefixes

    again = Up(data_dir, "--demo")
    again.wait_for(r"demo login: owner@demo-shop\.example  \(password shown when it was created")
    assert "Demo Shop" in _log_in(again, email, password)  # same data, same account
    processes = again.every_process(data_dir)

    assert again.stop(signal.SIGTERM) < 10
    assert _alive(processes) == []


def test_ctrl_c_at_a_terminal_stops_the_workers_before_valkey(tmp_path):
    """The terminal sends SIGINT to the whole foreground process group. Valkey must not take
    it too and stop at once, or the workers could neither drop their live keys nor hand an
    unfinished task back."""
    data_dir = tmp_path / "data"
    up = Up(data_dir)
    up.wait_for(r"aios: ready in")  # healthy: a worker answers
    processes = up.every_process(data_dir)

    started = time.monotonic()
    os.killpg(up.process.pid, signal.SIGINT)
    up.process.wait(timeout=20)

    assert time.monotonic() - started < 10 and up.process.returncode == 0
    assert _alive(processes) == []
    shutdown = "\n".join(up.lines[up.lines.index("aios: stopping (SIGINT)") :])
    assert "worker: Warm shutdown" in shutdown
    assert "could not drop the live key" not in shutdown and "Error 111" not in shutdown


def test_up_refuses_a_taken_port_in_one_line_and_starts_nothing(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = Up(tmp_path / "data", port=port)
        up.process.wait(timeout=30)

    assert up.process.returncode == 1
    assert up.lines == [
        f"aios: port {port} on 127.0.0.1 is already in use; stop what uses it or pass --port"
    ]
    assert not (tmp_path / "data").exists()


def test_up_stops_what_it_started_when_a_service_fails(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "valkey").write_text("not a directory")  # Valkey cannot start here

    up = Up(data_dir)
    up.process.wait(timeout=60)

    assert up.process.returncode == 1
    errors = [line for line in up.lines if "Valkey" in line]
    assert len(errors) == 1 and errors[0].startswith("aios: embedded Valkey failed to start")
    postmaster_pid = data_dir / "postgres" / "postmaster.pid"
    assert not postmaster_pid.exists()  # PostgreSQL had started, and was stopped again


def test_a_hard_killed_launcher_takes_its_children_along_and_the_next_up_cleans_up(tmp_path):
    data_dir = tmp_path / "data"
    up = Up(data_dir)
    up.wait_for(r"aios: ready in")
    processes = up.every_process(data_dir)
    services = {p.pid for p in processes if "valkey" in p.name() or "postgres" in p.name()}

    up.process.kill()  # SIGKILL: no chance to stop anything itself
    up.process.wait(timeout=10)
    time.sleep(3)
    children = [p for p in processes[1:] if p.pid not in services]
    assert _alive(children) == []  # web, worker and beat got SIGTERM from the kernel

    again = Up(data_dir)
    again.wait_for(r"aios: ready in")  # adopted the orphaned PostgreSQL, replaced the Valkey
    processes += again.every_process(data_dir)
    again.stop(signal.SIGINT)

    assert _alive(processes) == []


def test_the_demo_shops_secrets_reach_the_simulator_even_when_they_begin_with_a_dash(tmp_path):
    """A random secret may begin with "-": passed as a separate argument, argparse took it
    for an option and the demo's shop exited at start ("expected one argument")."""
    from aios_site.launcher import Launcher, parse_options
    from catalog.simulator.command import _options

    options = parse_options(["--simulator-rate", "2", "--simulator-scenario", "steady"])
    launcher = Launcher(options, tmp_path)
    launcher.simulator_port = 9999
    shop = {
        "secret": "-Xy_1",
        "shop": "demo.myshopify.com",
        "access_token": "-t",
        "api_token": "-a",
    }

    parsed = _options(launcher._simulator_command(shop)[3:])

    assert (parsed.secret, parsed.access_token, parsed.api_token) == ("-Xy_1", "-t", "-a")
    assert (parsed.scenario, parsed.rate) == ("steady", 2.0)  # a shop that keeps going
