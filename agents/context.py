"""StepContext: the only way a step reaches anything nondeterministic, and the journal of it."""

from __future__ import annotations

import hashlib
import http.client
import json
import random as random_module
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError
from django.utils import timezone

from agents.models import Checkpoint, JournalEntry, JournalKind, Run
from agents.pipelines import PermanentError, TransientError
from aios_site import netguard

STREAM_INTERVAL = 0.25  # seconds between live updates of a streamed answer

# What a step reaches above the engine — memory's recall, governance's proposals — is plugged
# in by the app that owns it when Django starts (its AppConfig.ready): the engine imports
# neither, so agents sits below memory and approvals with no loop between them.
_PROVIDED: dict[str, Callable[..., Any]] = {}


def provide(name: str, function: Callable[..., Any]) -> None:
    _PROVIDED[name] = function


def provided(name: str) -> Callable[..., Any]:
    try:
        return _PROVIDED[name]
    except KeyError:
        raise PermanentError(f"no app provides {name!r} to steps (is it installed?)") from None


class Cancelled(Exception):
    """The run was cancelled: the step stops before its next call."""


class NonDeterminism(PermanentError):
    """A retried step asked for something different from what it asked before."""


@dataclass
class Divergence(Exception):
    """In a replay, the code asked for something the original run did not do."""

    step: str
    seq: int
    position: int | None
    expected: Any
    got: Any

    def as_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "seq": self.seq,
            "position": self.position,
            "expected": self.expected,
            "got": self.got,
        }


class ReplayedFailure(Exception):
    """In a replay, a call that failed in the original run fails again, with its recorded error
    (`recorded`, as the original run wrote it), instead of being made."""

    def __init__(self, recorded: str):
        super().__init__(recorded)
        self.recorded = recorded


def request_hash(kind: str, name: str, request: Any) -> str:
    canonical = json.dumps([kind, name, request], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def storable(value: Any) -> Any:
    """`value` with each NUL character replaced by U+FFFD: PostgreSQL's JSON cannot hold one,
    and a page or an answer that has one must not fail the step journaling it. The step gets
    what the journal keeps, so a retry or a replay sees the same."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [storable(item) for item in value]
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    return value


def _describe(entry: JournalEntry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {"kind": entry.kind, "name": entry.name, "request": entry.request}


class StepContext:
    def __init__(
        self,
        *,
        run: Run,
        checkpoint: Checkpoint,
        replay_of: list[JournalEntry] | None,
        may_cache: bool = True,
    ):
        self.run = run
        self.checkpoint = checkpoint
        self.input: dict[str, Any] = run.input
        self.state: dict[str, Any] = dict(checkpoint.state_before)
        self.workspace_id = run.workspace_id
        self._position = 0
        # Replay: the original run's calls for this step, served in order instead of calling.
        self._replay = replay_of
        # Only a retry can find calls an earlier attempt completed.
        retry = replay_of is None and checkpoint.attempt > 1
        self._earlier = self._completed_calls() if retry else {}
        # The response cache is never used by a step that proposes effects (see `step`).
        self.may_cache = may_cache

    # -- what steps call ----------------------------------------------------------------------

    def now(self) -> str:
        return self._call(JournalKind.CLOCK, "now", {}, lambda: timezone.now().isoformat())

    def random(self) -> float:
        return self._call(JournalKind.RANDOM, "random", {}, random_module.random)

    def tool(self, name: str, **arguments: Any) -> Any:
        from agents.tools import call_tool

        return self._call(
            JournalKind.TOOL, name, arguments, lambda: call_tool(name, arguments, run=self.run)
        )

    def http(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        timeout: float = 10,
        max_bytes: int | None = None,
        public_only: bool = False,
    ) -> dict:
        """An HTTP request whose status and body (JSON, or else text) are journaled. With
        `max_bytes`, no more than that is read, and the answer says if it was `truncated`.
        `public_only` refuses a host that resolves to a private, loopback or link-local
        address (a URL someone typed must not reach the server's own network)."""
        request: dict[str, Any] = {"method": method, "url": url, "json": json_body}
        if max_bytes is not None:
            request["max_bytes"] = max_bytes

        def perform() -> dict:
            return _http(
                method, url, json_body, timeout, max_bytes=max_bytes, public_only=public_only
            )

        return self._call(JournalKind.HTTP, url, request, perform)

    def model(self, capability: str, /, **request: Any) -> dict:
        """A model capability (`embed`, `classify`, `detect_language`, `draft`, `plan`),
        served by the tier the agent's policy names; see agents/llm/gateway.py.

        Journaled under the capability, not the model: a replay serves the recorded answer
        even if the policy or provider changed since.
        """
        from agents import llm

        stream = request.pop("stream", False)
        on_delta = self._streamer() if stream else None
        return self._call(
            JournalKind.MODEL,
            capability,
            request,
            lambda: llm.call(
                capability,
                run=self.run,
                request=request,
                cache_allowed=self.may_cache,
                on_delta=on_delta,
            ),
        )

    def recall(
        self,
        query: str,
        *,
        namespaces: list[str] | None = None,
        k: int = 8,
        kinds: list[str] | None = None,
    ) -> list[dict]:
        """Memory that matches the query (memory.selectors.recall). The journal keeps the
        keys, versions and content returned: a replay sees the same memory, and what the
        step writes can cite them. Each item remembers the run that used it."""
        recall = provided("recall")

        def perform() -> list[dict]:
            return recall(
                run=self.run,
                seq=self.checkpoint.seq,
                query=query,
                namespaces=namespaces,
                k=k,
                kinds=kinds,
            )

        request = {"query": query, "namespaces": namespaces, "k": k, "kinds": kinds}
        return self._call(JournalKind.MEMORY, "recall", request, perform)

    def propose(
        self,
        effector: str,
        *,
        target: str,
        payload: dict,
        rationale: str = "",
        sources: list | None = None,
        resume: str,
        key: str = "decision",
    ):
        """Proposes a change through an effector and returns the transition to make: wait
        until it is decided and done, then resume at `resume` with the outcome in state[key]
        (status committed, failed, rejected or expired; the payload as approved, edits
        included). An effector the agent may not use fails the step. Journaled: a retried
        step finds its proposal instead of making a second one."""
        from agents.pipelines import goto, wait_for

        if self.run.trigger == "eval":
            return self._evaluate(effector, target, payload, rationale, sources, resume, key)
        propose = provided("propose")

        def perform() -> dict:
            return propose(
                run=self.run,
                seq=self.checkpoint.seq,
                step=self.checkpoint.step,
                effector=effector,
                target=target,
                payload=payload,
                rationale=rationale,
                sources=sources,
            )

        request = {
            "target": target,
            "payload": payload,
            "rationale": rationale,
            "sources": sources or [],
        }
        made = self._call(JournalKind.PROPOSAL, effector, request, perform)
        if made["status"] == "rejected":  # denied by policy: nothing to wait for
            return goto(resume, **{key: made})
        return wait_for("proposal", resume=resume, key=key, proposal=made["proposal"])

    def _evaluate(self, effector, target, payload, rationale, sources, resume, key):
        """An eval's run proposes nothing: the policy's verdict on what it would have proposed
        is journaled instead, and the run goes on as if the proposal had been decided so."""
        from agents.pipelines import goto

        evaluate = provided("evaluate")

        def perform() -> dict:
            return evaluate(
                run=self.run,
                effector=effector,
                payload=payload,
                context=self.run.input.get("eval_item") or {},
            )

        request = {
            "target": target,
            "payload": payload,
            "rationale": rationale,
            "sources": sources or [],
            "evaluated": True,
        }
        verdict = self._call(JournalKind.PROPOSAL, effector, request, perform)
        return goto(resume, **{key: verdict})

    def _streamer(self) -> Callable[[str], None]:
        """Publishes a streamed answer's text so far to the run's page, a few times a second."""
        from agents import events

        last = [0.0]

        def publish(text: str) -> None:
            if time.monotonic() - last[0] >= STREAM_INTERVAL:
                last[0] = time.monotonic()
                events.run_streamed(self.run, self.checkpoint.step, text)

        return publish

    # -- the journal --------------------------------------------------------------------------

    @property
    def calls_made(self) -> int:
        return self._position

    def _completed_calls(self) -> dict[int, JournalEntry]:
        """Calls an earlier attempt of this step completed: a retry reuses them."""
        entries = JournalEntry.objects.filter(run=self.run, seq=self.checkpoint.seq, ok=True)
        return {entry.position: entry for entry in entries}

    def _call(self, kind: str, name: str, request: Any, perform: Callable[[], Any]) -> Any:
        position = self._position
        self._position += 1
        digest = request_hash(kind, name, request)
        if self._replay is not None:
            return self._serve_replay(kind, name, request, digest, position)
        earlier = self._earlier.get(position)
        if earlier is not None:
            if earlier.request_hash != digest:
                raise NonDeterminism(
                    f"call {position} of step {self.checkpoint.step} changed between attempts"
                )
            return earlier.response
        self._stop_if_cancelled()
        return self._perform(kind, name, request, digest, position, perform)

    def _perform(self, kind, name, request, digest, position, perform) -> Any:
        entry = JournalEntry(
            checkpoint=self.checkpoint,
            run=self.run,
            seq=self.checkpoint.seq,
            position=position,
            kind=kind,
            name=name[:200],
            request=request,
            request_hash=digest,
        )
        started = time.perf_counter()
        try:
            response = storable(perform())
        except Exception as error:
            entry.ok = False
            entry.error = f"{type(error).__name__}: {error}"[:2000]
            entry.latency_ms = (time.perf_counter() - started) * 1000
            entry.save()  # failed calls are journaled too, but never reused
            raise
        entry.latency_ms = (time.perf_counter() - started) * 1000
        if kind == JournalKind.MODEL and isinstance(response, dict):
            entry.usage = response.get("usage") or {}
            entry.cost = Decimal(str(response.get("cost", 0)))
        entry.response = response
        try:
            entry.save()  # committed now (autocommit): a crash after this does not lose the call
        except IntegrityError:
            return self._journaled_first(position, digest)
        return response

    def _journaled_first(self, position: int, digest: str) -> Any:
        """Another attempt of this step journaled this call first: one whose worker only
        seemed dead (the sweeper gave its run to this one) and finished the call anyway.
        Its answer is the one the journal keeps, so it is this attempt's too."""
        kept = JournalEntry.objects.get(
            run=self.run, seq=self.checkpoint.seq, position=position, ok=True
        )
        if kept.request_hash != digest:
            raise NonDeterminism(
                f"call {position} of step {self.checkpoint.step} changed between attempts"
            )
        return kept.response

    def _serve_replay(self, kind, name, request, digest, position) -> Any:
        expected = self._replay[position] if position < len(self._replay) else None
        if expected is None or expected.request_hash != digest:
            raise Divergence(
                step=self.checkpoint.step,
                seq=self.checkpoint.seq,
                position=position,
                expected=_describe(expected),
                got={"kind": kind, "name": name, "request": request},
            )
        if not expected.ok:
            raise ReplayedFailure(expected.error)
        return expected.response

    def _stop_if_cancelled(self) -> None:
        if Run.objects.filter(pk=self.run.pk, cancel_requested=True).exists():
            raise Cancelled()


def _http(
    method: str,
    url: str,
    json_body: Any,
    timeout: float,
    *,
    max_bytes: int | None = None,
    public_only: bool = False,
) -> dict:
    """Through the network guard: with `public_only`, every hop (redirects included) must
    resolve to addresses the settings permit, and is connected to at the address checked."""
    data = json.dumps(json_body).encode() if json_body is not None else None
    policy = netguard.settings_policy(allow_private=None if public_only else True)
    try:
        response = netguard.fetch(
            method,
            url,
            policy=policy,
            body=data,
            headers={"Content-Type": "application/json"},
            timeout=timeout,
            max_bytes=max_bytes,
        )
    except netguard.Refused as refused:
        raise PermanentError(str(refused)) from refused
    except (OSError, http.client.HTTPException) as error:  # Unresolved, refused, timed out
        raise TransientError(f"{url}: {error}") from error
    if response.status >= 500 or response.status == 429:
        raise TransientError(f"HTTP {response.status} from {url}")
    body, answer = response.body, {"status": response.status}
    if max_bytes is not None:
        answer["truncated"] = len(body) > max_bytes
        body = body[:max_bytes]
    try:
        answer["body"] = json.loads(body) if body else None
    except ValueError:
        answer["body"] = body.decode(errors="replace")
    return answer
