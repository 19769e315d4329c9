"""Several daphne processes serving one listening socket.

One Python process serves requests on one core at a time. This opens the socket once and
starts `--processes` daphne processes that all accept from it (`daphne --fd`); the kernel
hands each new connection to one of them. Websocket groups go through the channel layer,
so a browser's socket and the request that caused its update may be in different
processes. If one process exits, the others are stopped and the exit is reported, so the
supervisor (`aios up`, systemd, …) sees one web role that failed, not half of one.

    python -m aios_site.webfarm --host 127.0.0.1 --port 8000 --processes 2
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

from aios_site.parentdeath import terminate_with_parent

APPLICATION = "aios_site.asgi:application"


def daphne_command(*, fd: int | None = None, host: str = "", port: int = 0) -> list[str]:
    where = ["--fd", str(fd)] if fd is not None else ["-b", host, "-p", str(port)]
    return [sys.executable, "-m", "daphne", *where, "--proxy-headers", APPLICATION]


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def serve(host: str, port: int, processes: int, extra: list[str]) -> int:
    sock = listening_socket(host, port)
    children = [
        subprocess.Popen(
            daphne_command(fd=sock.fileno()) + extra,
            pass_fds=(sock.fileno(),),
            preexec_fn=terminate_with_parent,
        )
        for _ in range(processes)
    ]
    stopping = []

    def stop(signum, frame) -> None:
        # Passed on at once: a supervisor that stops the farm expects daphne's own shutdown
        # time, not that plus a polling interval.
        stopping.append(signum)
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None and not stopping:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        sock.close()
    if stopping:
        return 0
    return next((child.returncode for child in children if child.returncode), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aios web", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--processes", type=int, default=2)
    options, extra = parser.parse_known_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aios_site.settings.base")
    return serve(options.host, options.port, max(1, options.processes), extra)


if __name__ == "__main__":
    sys.exit(main())
