from __future__ import annotations

import os
import subprocess
import sys

from aios_site import cli
from tests.helpers import free_port

WITHOUT_SERVICES = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}


def _aios(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aios_site.cli", *args],
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_worker_role_runs_celery_on_the_given_queues_and_concurrency():
    argv = cli.role_argv("worker", ["-Q", "bulk", "-c", "4", "--max-tasks-per-child", "50"])

    assert argv[1:6] == ["-m", "celery", "-A", "aios_site", "worker"]
    assert argv[argv.index("-Q") + 1] == "bulk" and argv[argv.index("-c") + 1] == "4"
    assert argv[-2:] == ["--max-tasks-per-child", "50"]


def test_the_web_role_serves_the_asgi_app_with_daphne():
    argv = cli.role_argv("web", ["--host", "0.0.0.0", "--port", "9000", "--processes", "1"])

    assert argv[1:3] == ["-m", "daphne"]
    assert argv[argv.index("-b") + 1] == "0.0.0.0" and argv[argv.index("-p") + 1] == "9000"
    assert argv[-1] == "aios_site.asgi:application"


def test_the_web_role_with_several_processes_runs_the_farm_that_shares_one_socket():
    argv = cli.role_argv("web", ["--port", "9000", "--processes", "3"])

    assert argv[1:3] == ["-m", "aios_site.webfarm"]
    assert argv[argv.index("--processes") + 1] == "3" and argv[argv.index("--port") + 1] == "9000"


def test_a_role_without_urls_or_a_running_instance_says_what_to_set(tmp_path):
    result = _aios("worker", env={**WITHOUT_SERVICES, "AIOS_DATA_DIR": str(tmp_path)})

    assert result.returncode == 1
    assert result.stderr.strip() == (
        "aios worker: set DATABASE_URL and REDIS_URL "
        "(or start `aios up` on this data directory first)"
    )


def test_other_subcommands_are_forwarded_to_manage_py():
    result = _aios("check", env={**os.environ, "DJANGO_SETTINGS_MODULE": "aios_site.settings.base"})

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_a_manage_command_starts_the_embedded_services_for_its_own_duration(tmp_path):
    env = {
        **WITHOUT_SERVICES,
        "AIOS_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "aios_site.settings.base",
    }

    result = _aios("migrate", "--check", env=env)

    # A fresh database has unapplied migrations: `migrate --check` reached it and said so.
    assert result.returncode == 1
    assert (tmp_path / "postgres" / "PG_VERSION").exists()
    assert not (tmp_path / "runtime.json").exists()  # stopped again, nothing left behind


def test_every_command_takes_the_data_dir_on_its_line(tmp_path):
    env = {**WITHOUT_SERVICES, "DJANGO_SETTINGS_MODULE": "aios_site.settings.base"}
    env.pop("AIOS_DATA_DIR", None)

    result = _aios("migrate", "--check", "--data-dir", str(tmp_path / "shop"), env=env)
    worker = _aios(f"--data-dir={tmp_path / 'elsewhere'}", "worker", env=env)

    assert result.returncode == 1  # reached the fresh database kept there, and said so
    assert (tmp_path / "shop" / "postgres" / "PG_VERSION").exists()
    assert "start `aios up` on this data directory first" in worker.stderr


def test_up_with_only_one_of_the_two_urls_says_to_set_both(tmp_path):
    env = {
        **WITHOUT_SERVICES,
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "AIOS_DATA_DIR": str(tmp_path),
    }

    result = _aios("up", "--port", str(free_port()), env=env)

    assert result.returncode == 1
    assert result.stderr.strip() == (
        "aios: set both DATABASE_URL and REDIS_URL, or neither (embedded mode)"
    )
    assert not (tmp_path / "postgres").exists()
