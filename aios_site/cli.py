"""The `aios` command.

aios up [--demo] [--host H] [--port P] [--data-dir D] [--workers N]
aios web [--host H] [--port P] [--processes N]
                                      one role of a multi-machine deployment
aios worker [-Q QUEUES] [-c N]
aios beat
aios simulate-store --target URL --secret S [--scenario shop-day|steady|none] [--rate N]
                                      a local Shopify-like store (no database needed)
aios <any manage.py command>          e.g. `aios token create`, `aios demo`, `aios migrate`,
                                      `aios createsuperuser` (a staff login for /admin/)

Every command takes --data-dir D (default: $AIOS_DATA_DIR, else the per-user data directory):
the embedded PostgreSQL and Valkey it starts or reaches are the ones kept there.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid

from aios_site import embedded, paths, webfarm
from aios_site.queues import QUEUES

SETTINGS_MODULE = "aios_site.settings.base"
# One Python process serves on one core; two keep a 2-core machine's web side busy.
WEB_PROCESSES = 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__.strip())
        return 0
    argv = _take_data_dir(argv)
    if not argv:
        print(__doc__.strip())
        return 0
    command, rest = argv[0], argv[1:]
    if command == "up":
        from aios_site.launcher import up

        return up(rest)
    if command == "simulate-store":  # stdlib only: runs before (and without) Django
        from catalog.simulator import main as simulate_store

        return simulate_store(rest)
    if command in ROLE_PARSERS:
        return run_role(command, rest)
    return manage(argv)


def _take_data_dir(argv: list[str]) -> list[str]:
    """`--data-dir D` (or `--data-dir=D`) anywhere on the line, taken out and made the data
    directory of whatever the command starts or reaches (AIOS_DATA_DIR)."""
    rest, index = [], 0
    while index < len(argv):
        word = argv[index]
        if word == "--data-dir" and index + 1 < len(argv):
            os.environ["AIOS_DATA_DIR"] = _resolved(argv[index + 1])
            index += 2
            continue
        if word.startswith("--data-dir="):
            os.environ["AIOS_DATA_DIR"] = _resolved(word.split("=", 1)[1])
        else:
            rest.append(word)
        index += 1
    return rest


def _resolved(path: str) -> str:
    from pathlib import Path

    return str(Path(path).expanduser().resolve())


def manage(argv: list[str]) -> int:
    """Runs a manage.py command, reaching the embedded services when no URLs are configured."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    from django.core.management import execute_from_command_line

    try:
        with embedded.ensure(paths.data_dir()) as service_env:
            os.environ.update(service_env)
            execute_from_command_line(["aios", *argv])
    except embedded.ServiceStartError as error:
        print(f"aios: {error}", file=sys.stderr)
        return 1
    return 0


def web_command(*, host: str, port: int, processes: int = 1) -> list[str]:
    """daphne itself, or for several processes the farm that shares one socket among them."""
    if processes <= 1:
        return webfarm.daphne_command(host=host, port=port)
    where = ["--host", host, "--port", str(port), "--processes", str(processes)]
    return [sys.executable, "-m", "aios_site.webfarm", *where]


def worker_command(*, queues: str = QUEUES, concurrency: int = 2) -> list[str]:
    # A unique node name, so several workers on one host do not clash in broadcasts.
    node = f"aios-{uuid.uuid4().hex[:8]}@%h"
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "aios_site",
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "-n",
        node,
        "-l",
        "INFO",
        "--without-mingle",
    ]


def beat_command() -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "aios_site", "beat", "-l", "INFO"]


def _web_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aios web", description="Serve HTTP and websockets.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--processes", type=int, default=WEB_PROCESSES, help="daphne processes sharing the port"
    )
    return parser


def _worker_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aios worker", description="Run a Celery worker.")
    parser.add_argument("-Q", "--queues", default=QUEUES)
    parser.add_argument("-c", "--concurrency", type=int, default=2)
    return parser


def _beat_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog="aios beat", description="Run the Celery beat scheduler.")


ROLE_PARSERS = {"web": _web_parser, "worker": _worker_parser, "beat": _beat_parser}


def role_argv(role: str, rest: list[str]) -> list[str]:
    """The command line for one role; options the role does not know go to daphne or celery."""
    options, extra = ROLE_PARSERS[role]().parse_known_args(rest)
    if role == "web":
        web = web_command(host=options.host, port=options.port, processes=options.processes)
        return web + extra
    if role == "worker":
        return worker_command(queues=options.queues, concurrency=options.concurrency) + extra
    return beat_command() + extra


def role_environ() -> dict[str, str]:
    """The configured URLs, or those of a running `aios up` on this data dir (to add workers)."""
    if embedded.configured_urls():
        return {}
    running = embedded.attach(paths.data_dir())
    if running is None:
        raise embedded.ServiceStartError(
            "set DATABASE_URL and REDIS_URL (or start `aios up` on this data directory first)"
        )
    return running


def run_role(role: str, rest: list[str]) -> int:
    try:
        service_env = role_environ()
    except embedded.ServiceStartError as error:
        print(f"aios {role}: {error}", file=sys.stderr)
        return 1
    argv = role_argv(role, rest)
    environ = {"DJANGO_SETTINGS_MODULE": SETTINGS_MODULE, **os.environ, **service_env}
    # The role takes over this process, so signals from a process manager reach it directly.
    os.execve(sys.executable, argv, environ)  # noqa: S606
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
