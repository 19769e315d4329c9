"""A local OpenAI-compatible HTTP server for tests: the real `openai` SDK talks to it.

Replies are scripted in order (`script(...)`); with nothing scripted it answers with a
deterministic echo. Classification requests have a script of their own (`classify_as`) and,
with nothing scripted, an answer that names no intent. It records every request and can
answer with an HTTP error (with headers, e.g. Retry-After), leave `usage` out, return empty
content, or be slow. A request with `"stream": true` gets server-sent events, a word per
chunk, usage in a last chunk when asked for (`stream_options.include_usage`), or a stream
cut off halfway (`cut_stream`). A reply's `finish_reason` ("stop", or "length" for an
answer cut off at max_tokens) is sent as the server would.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    content: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    usage: dict[str, int] | bool | None = True  # True: computed; None: left out
    delay: float = 0.0
    cut_stream: bool = False
    finish_reason: str = "stop"  # "length": the answer was cut off at max_tokens


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._script: deque[Reply] = deque()
        # The gateway's second opinion on an intent is a request of its own kind: answered
        # from its own script (`classify_as`), recorded apart, so that the replies scripted
        # for drafts stay in the order the drafts ask for them.
        self.classify_requests: list[dict[str, Any]] = []
        self._classifications: deque[Reply] = deque()
        self._lock = threading.Lock()
        # Down: every connection is closed before an answer (a server that crashed or is
        # restarting behind its port); `refused` counts those requests.
        self.down = False
        self.refused = 0
        # The most requests it was ever serving at once (a one-slot server would queue more).
        self.in_flight = self.max_in_flight = 0
        self.cancelled = 0  # requests whose client hung up while they were being answered
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if fake.down:
                    with fake._lock:
                        fake.refused += 1
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                with fake._lock:
                    fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    fake._answer(self, body)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_port}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def classify_as(self, *answers: list[str] | Reply) -> None:
        """Scripts the answers to classification requests, in order: each a list of intents,
        one per message asked about, or a Reply as it is (one that is not JSON, say)."""
        with self._lock:
            self._classifications.extend(
                answer if isinstance(answer, Reply) else Reply(json.dumps({"intents": answer}))
                for answer in answers
            )

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if is_classification(body):
                self.classify_requests.append(body)
                if self._classifications:
                    return self._classifications.popleft()
                return Reply(content='{"intents": []}')  # no opinion on any of them
            self.requests.append(body)
            if self._script:
                return self._script.popleft()
        return Reply(content=f"echo: {body['messages'][-1]['content']}")

    def _answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        reply = self._next(body)
        if not self._generate_for(handler, reply.delay):
            return
        if reply.status == 200 and body.get("stream"):
            self._stream(handler, body, reply)
            return
        if reply.status != 200:
            payload = {"error": {"message": f"scripted {reply.status}", "type": "scripted"}}
        else:
            payload = self._completion(body, reply)
        data = json.dumps(payload).encode()
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def _generate_for(self, handler: BaseHTTPRequestHandler, seconds: float) -> bool:
        """Spends `seconds` "generating", stopping as soon as the client hangs up, as
        llama.cpp and vLLM do (`cancelled` counts those); False if it did."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([handler.connection], [], [], min(left, 0.05))
            if readable and not handler.connection.recv(1, socket.MSG_PEEK):
                with self._lock:
                    self.cancelled += 1
                return False
        return True

    def _stream(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], reply: Reply) -> None:
        words = (reply.content or "").split(" ")
        chunks = [" ".join(words[: i + 1]) for i in range(len(words))] if reply.content else []
        deltas = [c[len(p) :] for p, c in zip(["", *chunks], chunks, strict=False)]
        if reply.cut_stream:
            deltas = deltas[: max(1, len(deltas) // 2)]
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/event-stream")
            handler.end_headers()
            for delta in deltas:
                self._event(handler, self._chunk(body, {"content": delta}))
            if reply.cut_stream:
                handler.wfile.flush()
                handler.connection.shutdown(2)  # the connection drops mid-answer
                return
            self._event(
                handler,
                {
                    **self._chunk(body, {}),
                    "choices": [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}],
                },
            )
            usage = self._completion(body, reply).get("usage")
            if usage and (body.get("stream_options") or {}).get("include_usage"):
                self._event(handler, {**self._chunk(body, {}), "choices": [], "usage": usage})
            handler.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    @staticmethod
    def _chunk(body: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }

    @staticmethod
    def _event(handler: BaseHTTPRequestHandler, payload: dict[str, Any]) -> None:
        handler.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
        handler.wfile.flush()

    @staticmethod
    def _completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": reply.finish_reason,
                    "message": {"role": "assistant", "content": reply.content},
                }
            ],
        }
        if reply.usage is True:
            prompt = sum(len(str(m["content"]).split()) for m in body["messages"])
            completion = len((reply.content or "").split())
            payload["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        elif reply.usage:
            payload["usage"] = reply.usage
        return payload


def is_classification(body: dict[str, Any]) -> bool:
    messages = body.get("messages") or [{}]
    return str(messages[0].get("content", "")).startswith("You classify customer messages")
