"""Effectors: the only code that changes the outside world, each behind a proposal.

An effector checks a payload (`validate`), rates it (`risk`), shows what it would change
(`preview`, a list of {field, before, after}), offers facts for the policy (`facts`), applies
it (`commit`, given an idempotency key derived from the proposal's id, which it sends on) and
may take it back (`undo`, to the `before_image` read before the first attempt wrote anything).
`commit` may run more than once for one proposal (a worker died after the effect but before
recording it): applying the same key again must change nothing. Every outbound write calls
`lease.guard()` right before it leaves, so a worker that lost the commit's lease sends nothing.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import http.client
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from aios_site import netguard
from aios_site.chaos import attempt_key
from aios_site.core import lease
from aios_site.core.actors import Actor
from aios_site.core.errors import PermanentError, TransientError
from approvals.edits import Edit

_REGISTRY: dict[str, Effector] = {}


@dataclass(frozen=True)
class Found:
    """What an effector finds at its target once a commit's attempts ran out: whether the
    change is in place (`applied` True, with the `result` a commit would have recorded), is
    not (False), or cannot be told (None, `detail` says why)."""

    applied: bool | None
    result: dict[str, Any] | None = None
    detail: str = ""


class Effector:
    name: ClassVar[str]
    label: ClassVar[str] = ""  # what an owner calls this kind of change: "Reply to a customer"
    replaces_minutes: ClassVar[float] = 2.0  # the person's time one commit saves

    def headline(self, payload: dict[str, Any], *, name: str, facts: dict[str, Any]) -> str:
        """The card's title in the owner's words, as a verb: "Reply to Nina about order
        #1016". `name` is what its target is called (approvals/targets.py), `facts` what the
        policy was given; no query of its own, so a page of cards costs none."""
        label = self.label or self.name
        return f"{label}: {name}" if name else label

    def validate(self, payload: dict[str, Any], *, workspace) -> None:
        """Raises PermanentError when the payload cannot be applied."""

    def risk(self, payload: dict[str, Any]) -> str:
        return "medium"

    def preview(self, payload: dict[str, Any], *, workspace) -> list[dict[str, Any]]:
        return [{"field": k, "before": None, "after": v} for k, v in sorted(payload.items())]

    def facts(self, payload: dict[str, Any], *, workspace) -> dict[str, Any]:
        return {}

    def edits(
        self, payload: dict[str, Any], *, workspace, facts: dict[str, Any] | None = None
    ) -> list[Edit]:
        """The parts of this payload a person may change on the card (approvals/edits.py);
        none by default: such a card is approved or rejected as it is. Read from the payload
        and the proposal's `facts` alone: a page of cards makes no query per card."""
        return []

    def eval_facts(
        self, payload: dict[str, Any], *, workspace, context: dict[str, Any]
    ) -> dict[str, Any]:
        """The facts of a proposal an eval would make: what `facts` reads from the shop comes
        from the eval item (`context`) where the two differ."""
        return self.facts(payload, workspace=workspace)

    def before_image(self, payload: dict[str, Any], *, workspace) -> dict[str, Any] | None:
        """What the target holds now, for undo: read once, before the first attempt writes.
        None: nothing to restore (or the effector cannot be undone)."""
        return None

    def commit(self, payload: dict[str, Any], idempotency_key: str, *, workspace, proposal):
        raise NotImplementedError

    def undo(self, result: dict[str, Any], *, workspace, proposal) -> dict[str, Any]:
        raise PermanentError(f"{self.name} cannot be undone")

    def confirm(self, proposal, *, workspace) -> Found:
        """Called once a commit's attempts ran out, under the commit's last lease: an attempt
        may have applied the change and died before recording it, so look at the target
        (read it back, or ask a receiver by the same idempotency key) rather than record
        "nothing applied" blindly."""
        return Found(None, detail=f"{self.name} cannot be read back")

    @property
    def can_undo(self) -> bool:
        return type(self).undo is not Effector.undo


def register(cls: type[Effector]) -> type[Effector]:
    _REGISTRY[cls.name] = cls()
    return cls


def get_effector(name: str) -> Effector:
    if name not in _REGISTRY:
        raise PermanentError(f"no effector named {name!r}")
    return _REGISTRY[name]


def effector_names() -> list[str]:
    return sorted(_REGISTRY)


def require_field(payload: dict[str, Any], field: str, kind: type) -> Any:
    value = payload.get(field)
    if not isinstance(value, kind) or value in ("", None):
        raise PermanentError(f"the payload needs `{field}` ({kind.__name__})")
    return value


@register
class Note(Effector):
    """Writes a note into the workspace's memory (namespace `notes` unless it says another)."""

    name = "core.note"
    label = "Note for the team"
    replaces_minutes = 1.0

    def headline(self, payload, *, name, facts) -> str:
        if name:
            return f"Save a note about {name}"
        key = payload.get("key")
        return f"Save the note “{key}”" if key else "Save a note"

    def validate(self, payload, *, workspace) -> None:
        require_field(payload, "content", str)
        if len(payload["content"]) > 20_000:
            raise PermanentError("a note holds at most 20 000 characters")

    def risk(self, payload) -> str:
        return "low"

    def edits(self, payload, *, workspace, facts=None) -> list[Edit]:
        return [Edit(("content",), "text", "Note", payload.get("content"))]

    def preview(self, payload, *, workspace) -> list[dict[str, Any]]:
        from memory.selectors import memory_current

        namespace, key = payload.get("namespace", "notes"), payload.get("key")
        current = key and memory_current(workspace_id=workspace.pk, namespace=namespace, key=key)
        before = current.content if current else None
        return [
            {
                "field": f"{namespace}/{key or '(new note)'}",
                "before": before,
                "after": payload["content"],
            }
        ]

    def before_image(self, payload, *, workspace) -> dict[str, Any]:
        from memory.selectors import memory_current

        namespace, key = payload.get("namespace", "notes"), payload.get("key")
        current = key and memory_current(workspace_id=workspace.pk, namespace=namespace, key=key)
        return {"content": current.content if current else None}

    def commit(self, payload, idempotency_key, *, workspace, proposal) -> dict[str, Any]:
        from memory.services import Source, memory_write

        item = memory_write(
            workspace=workspace,
            namespace=payload.get("namespace", "notes"),
            key=payload.get("key") or idempotency_key,  # a retry finds the note it wrote
            kind="note",
            content=payload["content"],
            source=Source.of_run(proposal.run, proposal.seq) if proposal.run else Source("run"),
        )
        return {"namespace": item.namespace, "key": item.key, "item": item.pk}

    def undo(self, result, *, workspace, proposal) -> dict[str, Any]:
        """An edit of a note goes back to the text before it (a new version); a note the
        proposal wrote anew is deleted."""
        from memory.services import Source, memory_forget, memory_write

        actor = Actor.system(f"undo of proposal {proposal.pk}")
        namespace, key = result["namespace"], result["key"]
        previous = (proposal.before_image or {}).get("content")
        if previous is None:
            memory_forget(workspace=workspace, namespace=namespace, key=key, actor=actor)
            return {"deleted": f"{namespace}/{key}"}
        memory_write(
            workspace=workspace,
            namespace=namespace,
            key=key,
            kind="note",
            content=previous,
            source=Source("run", ref=f"undo of proposal {proposal.pk}"),
        )
        return {"restored": f"{namespace}/{key}"}


@register
class Webhook(Effector):
    """POSTs a JSON body to one of the workspace's webhook endpoints, signed with its secret:
    `X-AIOS-Signature: sha256=<hex HMAC of the body>`, `Idempotency-Key: aios-proposal-N`."""

    name = "core.webhook"
    label = "Message to a connected service"

    def headline(self, payload, *, name, facts) -> str:
        return f"Send an update to {payload.get('endpoint') or 'a connected service'}"

    def validate(self, payload, *, workspace) -> None:
        require_field(payload, "endpoint", str)
        if not isinstance(payload.get("body"), dict):
            raise PermanentError("the payload needs `body`, a JSON object")
        _endpoint(workspace, payload["endpoint"])

    def risk(self, payload) -> str:
        return "medium"

    def edits(self, payload, *, workspace, facts=None) -> list[Edit]:
        return [Edit(("body",), "json", "What is sent", payload.get("body"))]

    def preview(self, payload, *, workspace) -> list[dict[str, Any]]:
        endpoint = _endpoint(workspace, payload["endpoint"])
        return [{"field": f"POST {endpoint.url}", "before": None, "after": payload["body"]}]

    def commit(self, payload, idempotency_key, *, workspace, proposal) -> dict[str, Any]:
        send = self._sender(payload, workspace, idempotency_key, proposal)
        return deliver(proposal, f"{proposal.idempotency_key}:webhook", send)

    def confirm(self, proposal, *, workspace) -> Found:
        key = attempt_key(proposal.idempotency_key)
        send = self._sender(proposal.payload, workspace, key, proposal)
        return confirm_delivery(proposal, f"{proposal.idempotency_key}:webhook", send)

    @staticmethod
    def _sender(payload, workspace, idempotency_key: str, proposal) -> Callable[[], dict[str, Any]]:
        def send() -> dict[str, Any]:
            extra = {"X-AIOS-Proposal": str(proposal.pk)}
            return endpoint_post(
                workspace, payload["endpoint"], payload["body"], idempotency_key, extra
            )

        return send


def endpoint_post(
    workspace, name: str, body: dict[str, Any], idempotency_key: str, headers: dict[str, str]
) -> dict[str, Any]:
    """POSTs `body` to the workspace's webhook endpoint `name`, signed, with the key."""
    endpoint = _endpoint(workspace, name)
    headers = {"Idempotency-Key": idempotency_key, **headers}
    status = signed_post(
        endpoint.url,
        body,
        secret=endpoint.secret,
        headers=headers,
        allow_private=endpoint.system_made or None,
    )
    return {"status": status, "endpoint": endpoint.name}


def signed_post(
    url: str,
    payload: dict[str, Any],
    *,
    secret: str,
    headers: dict[str, str],
    allow_private: bool | None = None,
) -> int:
    """POSTs canonical JSON signed `X-AIOS-Signature: sha256=<hex HMAC of the body>`.
    `allow_private`: a receiver the system made on this machine (the demo's simulator);
    otherwise the settings decide whether a private address may be reached."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    signed = {"Content-Type": "application/json", "X-AIOS-Signature": f"sha256={signature}"}
    policy = netguard.settings_policy(allow_private=allow_private)
    return _post(url, body, {**signed, **headers}, policy=policy)


MAX_RETRY_AFTER = 30.0  # seconds a commit waits in place for a busy receiver, at most
SEND_ATTEMPTS = 3


def _post(
    url: str, body: bytes, headers: dict[str, str], *, policy: netguard.Policy, timeout: float = 15
) -> int:
    """POSTs; a refusal (4xx) is permanent, a busy or broken server (429, 5xx, no answer) is
    worth another try. A receiver that says when to come back (Retry-After, up to
    MAX_RETRY_AFTER) is waited for in place, up to SEND_ATTEMPTS sends, each one guarded by
    the commit's lease. 409 for a request sent with an Idempotency-Key means the receiver
    applied that key already: done, not refused."""
    if not url.startswith(("http://", "https://")):
        raise PermanentError(f"not an HTTP URL: {url}")
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            return _post_once(url, body, headers, policy, timeout)
        except TransientError as busy:
            wait = busy.retry_after
            if attempt == SEND_ATTEMPTS or wait is None or wait > MAX_RETRY_AFTER:
                raise
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


# Set by `deliver` while its send runs: told True right before each request leaves and False
# when the receiver answered that it took nothing.
_handing: contextvars.ContextVar[Callable[[bool], None] | None] = contextvars.ContextVar(
    "handing", default=None
)


def _post_once(
    url: str, body: bytes, headers: dict[str, str], policy: netguard.Policy, timeout: float
) -> int:
    lease.guard()  # a commit whose lease was taken over (its worker paused) sends nothing
    handed = _handing.get() or (lambda out: None)
    handed(True)
    try:
        # The receiver's address is checked as it is connected to, and at each redirect: the
        # URL was typed in, and its name may resolve to the server's own network by now.
        # Its answer's body is never used: one byte of it is read, at most.
        response = netguard.fetch(
            "POST",
            url,
            policy=policy,
            body=body,
            headers=headers,
            timeout=timeout,
            max_bytes=0,
        )
    except netguard.Refused as refused:
        handed(False)  # refused before it went (or where a redirect would have taken it)
        if not refused.address:
            raise PermanentError(f"{url}: {refused}") from refused
        reason = f"{refused.host} is not a public address ({refused.address}): not sent"
        raise PermanentError(f"{url}: {reason}") from refused
    except (OSError, http.client.HTTPException) as error:
        raise TransientError(f"{url}: {error}") from error
    if 200 <= response.status < 300:
        return response.status
    if response.status == 409 and "Idempotency-Key" in headers:
        return response.status
    handed(False)
    if response.status == 429 or response.status >= 500:
        retry_after = _seconds(response.headers.get("retry-after"))
        raise TransientError(f"{url} answered {response.status}", retry_after=retry_after)
    raise PermanentError(f"{url} refused it: {response.status}")


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: not worth waiting for in place
    return seconds if seconds is not None and seconds >= 0 else None


def send_once(proposal, key: str, send: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Sends through a channel that cannot be asked afterwards whether it took something (a
    mail handed to SMTP) at most once for `key`, across retries, redeliveries and workers:
    the hand-over is recorded, and committed, before `send` runs. A channel that refuses
    (raises) leaves nothing sent and may be tried again; an attempt that died between the
    hand-over and hearing back is not sent again, and says so."""
    from django.utils import timezone

    from approvals.models import Outbox

    row, _ = Outbox.objects.get_or_create(proposal_id=proposal.pk, key=key)
    if row.done_at is not None:
        return row.result
    lease.guard()
    if row.handed_at is not None or not Outbox.objects.filter(
        pk=row.pk, handed_at__isnull=True
    ).update(handed_at=timezone.now()):
        return {"handed_over": True, "note": "an earlier attempt handed it over: not sent again"}
    try:
        result = send()
    except BaseException:
        Outbox.objects.filter(pk=row.pk).update(handed_at=None)  # refused: nothing went out
        raise
    Outbox.objects.filter(pk=row.pk).update(done_at=timezone.now(), result=result)
    return result


def deliver(proposal, key: str, send: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Sends through a channel that takes an Idempotency-Key (a webhook receiver, a helpdesk):
    sending again is safe, so every attempt sends, but the hand-over is recorded first, so
    that once the attempts run out `confirm_delivery` knows whether anything may have gone
    out. Each send marks it before it leaves; a receiver's refusal or "busy" answer means it
    took nothing, and clears the mark; no answer at all (a timeout, a worker that died)
    leaves it."""
    from django.utils import timezone

    from approvals.models import Outbox

    row, _ = Outbox.objects.get_or_create(proposal_id=proposal.pk, key=key)
    if row.done_at is not None:
        return row.result

    def handed(out: bool) -> None:
        unsent = Outbox.objects.filter(pk=row.pk, done_at__isnull=True)
        unsent.update(handed_at=timezone.now() if out else None)

    bound = _handing.set(handed)
    try:
        result = send()
    finally:
        _handing.reset(bound)
    Outbox.objects.filter(pk=row.pk).update(done_at=timezone.now(), result=result)
    return result


def confirm_delivery(proposal, key: str, send: Callable[[], dict[str, Any]]) -> Found:
    """After the last attempt: taken (the receiver answered), never handed over (nothing
    went out), or handed over by an attempt that died before hearing back — then it is asked
    once more by the same Idempotency-Key, which a receiver that took it answers without
    taking it twice."""
    settled = _outbox_settled(proposal, key)
    if settled is not None:
        return settled
    try:
        return Found(True, deliver(proposal, key, send))
    except Exception as error:  # any failure leaves it undetermined
        return Found(None, detail=f"an earlier attempt may have delivered it ({error})")


def confirm_handover(proposal, key: str) -> Found:
    """After the last attempt, for a `send_once` channel: taken, handed over by an attempt
    that died before hearing back (not sent again, as `send_once` says), or never sent."""
    settled = _outbox_settled(proposal, key)
    if settled is not None:
        return settled
    return Found(True, {"handed_over": True, "note": "an earlier attempt handed it over"})


def _outbox_settled(proposal, key: str) -> Found | None:
    """What the outbox row tells for sure: never handed over (a taken one was handed over
    first), or taken; None when an attempt handed it over and died before hearing back."""
    from approvals.models import Outbox

    row = Outbox.objects.filter(proposal_id=proposal.pk, key=key).first()
    if row is None or row.handed_at is None:
        return Found(False, detail="nothing was sent")
    if row.done_at is not None:
        return Found(True, row.result)
    return None


def _endpoint(workspace, name: str):
    from approvals.models import WebhookEndpoint

    endpoint = WebhookEndpoint.objects.filter(workspace=workspace, name=name).first()
    if endpoint is None:
        raise PermanentError(f"no webhook endpoint named {name!r}")
    return endpoint
