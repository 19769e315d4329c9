"""A local HTTP endpoint that receives what effectors send: it records every request and,
like a careful external system, applies each Idempotency-Key once."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, status: int = 200, delay: float = 0.0, script=()) -> None:
        self.requests: list[dict[str, Any]] = []
        # (status, headers) answered to the first requests, in order; `status` after them
        self.script: list[tuple[int, dict[str, str]]] = list(script)
        self.effects: dict[str, Any] = {}  # Idempotency-Key -> the body applied
        self.status = status
        self.delay = delay  # seconds between applying a request and answering it
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.requests.append(
                        {"headers": headers, "body": raw, "at": time.monotonic()}
                    )
                    status, extra = (
                        receiver.script.pop(0) if receiver.script else (receiver.status, {})
                    )
                    if status < 300:
                        receiver.effects.setdefault(headers.get("idempotency-key"), json.loads(raw))
                time.sleep(receiver.delay)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_port}/hook"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
