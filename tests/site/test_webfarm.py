"""`aios web --processes N`: several daphne processes on one socket, stopped as one."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import wait_until, web_serving

pytestmark = pytest.mark.django_db(transaction=True)


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    found = []
    for task in tasks.iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_two_processes_answer_on_one_port_and_stop_together_on_sigterm():
    with web_serving(processes=2) as (url, farm):
        daphnes = _children(farm.pid)
        assert len(daphnes) == 2
        for _ in range(20):  # connections land on either process; all are answered
            with urllib.request.urlopen(f"{url}/api/v1/healthz", timeout=5) as answer:
                assert json.loads(answer.read())["database"] == "ok"

        farm.send_signal(signal.SIGTERM)

        assert farm.wait(timeout=20) == 0
        wait_until(lambda: not any(_alive(pid) for pid in daphnes), timeout=20)


def test_when_one_process_dies_the_farm_stops_the_other_and_reports_failure():
    with web_serving(processes=2) as (_url, farm):
        first, second = _children(farm.pid)

        os.kill(first, signal.SIGKILL)

        assert farm.wait(timeout=20) != 0
        wait_until(lambda: not _alive(second), timeout=20)
