"""Startup of `aios up` to healthy (healthz 200 with a live worker), cold and warm, and stop time.

    python bench/startup.py [--runs N] [--json PATH]

Cold: a new data directory (initdb, migrations, demo workspace). Warm: the same directory
again. Each run starts `aios up --demo` on a free port, polls /api/v1/healthz every 50 ms,
then sends SIGINT and times the exit. With `--json PATH`, the figures are also written to
PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "AIOS_DATA_DIR"}
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/healthz", timeout=1) as r:
            return r.status == 200 and json.loads(r.read())["workers"] >= 1
    except OSError:
        return False


def one_run(data_dir: Path) -> tuple[float, float]:
    port = free_port()
    started = time.monotonic()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aios_site.cli",
            "up",
            "--demo",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while not healthy(port):
        if process.poll() is not None or time.monotonic() - started > 180:
            raise SystemExit("aios up did not become healthy")
        time.sleep(0.05)
    ready = time.monotonic() - started
    stopping = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    return ready, time.monotonic() - stopping


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    options = parser.parse_args()
    runs = options.runs
    cold, warm, stops = [], [], []
    for _ in range(runs):
        data_dir = Path(tempfile.mkdtemp(prefix="aios-bench-"))
        try:
            ready, stop = one_run(data_dir)
            cold.append(ready)
            stops.append(stop)
            ready, stop = one_run(data_dir)
            warm.append(ready)
            stops.append(stop)
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    figures = {}
    for key, name, values in (
        ("cold_s", "cold start to healthy", cold),
        ("warm_s", "warm start to healthy", warm),
        ("stop_s", "SIGINT to all stopped", stops),
    ):
        print(
            f"{name:<24} median {statistics.median(values):5.2f} s  "
            f"min {min(values):5.2f} s  max {max(values):5.2f} s  (n={len(values)})"
        )
        figures[key] = {
            "median": round(statistics.median(values), 2),
            "min": round(min(values), 2),
            "max": round(max(values), 2),
            "n": len(values),
        }
    from runtime import write_json

    write_json(options.json, figures)


if __name__ == "__main__":
    main()
