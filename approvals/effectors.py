"""Effectors: the only code that changes the outside world, each behind a proposal.

An effector checks a payload (`validate`), rates it (`risk`), shows what it would change
(`preview`, a list of {field, before, after}), offers facts for the policy (`facts`), applies
it (`commit`, given an idempotency key derived from the proposal's id, which it sends on) and
may take it back (`undo`). `commit` may run more than once for one proposal (a worker died
after the effect but before recording it): applying the same key again must change nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from typing import Any, ClassVar

from agents.pipelines import PermanentError, TransientError

_REGISTRY: dict[str, Effector] = {}


class Effector:
    name: ClassVar[str]
    replaces_minutes: ClassVar[float] = 2.0  # the person's time one commit saves

    def validate(self, payload: dict[str, Any], *, workspace) -> None:
        """Raises PermanentError when the payload cannot be applied."""

    def risk(self, payload: dict[str, Any]) -> str:
        return "medium"

    def preview(self, payload: dict[str, Any], *, workspace) -> list[dict[str, Any]]:
        return [{"field": k, "before": None, "after": v} for k, v in sorted(payload.items())]

    def facts(self, payload: dict[str, Any], *, workspace) -> dict[str, Any]:
        return {}

    def commit(self, payload: dict[str, Any], idempotency_key: str, *, workspace, proposal):
        raise NotImplementedError

    def undo(self, result: dict[str, Any], *, workspace, proposal) -> dict[str, Any]:
        raise PermanentError(f"{self.name} cannot be undone")

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
    replaces_minutes = 1.0

    def validate(self, payload, *, workspace) -> None:
        require_field(payload, "content", str)
        if len(payload["content"]) > 20_000:
            raise PermanentError("a note holds at most 20 000 characters")

    def risk(self, payload) -> str:
        return "low"

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
        from approvals.audit import Actor
        from memory.services import memory_forget

        actor = Actor.system(f"undo of proposal {proposal.pk}")
        memory_forget(
            workspace=workspace, namespace=result["namespace"], key=result["key"], actor=actor
        )
        return {"deleted": f"{result['namespace']}/{result['key']}"}


@register
class Webhook(Effector):
    """POSTs a JSON body to one of the workspace's webhook endpoints, signed with its secret:
    `X-AIOS-Signature: sha256=<hex HMAC of the body>`, `Idempotency-Key: aios-proposal-N`."""

    name = "core.webhook"

    def validate(self, payload, *, workspace) -> None:
        require_field(payload, "endpoint", str)
        if not isinstance(payload.get("body"), dict):
            raise PermanentError("the payload needs `body`, a JSON object")
        _endpoint(workspace, payload["endpoint"])

    def risk(self, payload) -> str:
        return "medium"

    def preview(self, payload, *, workspace) -> list[dict[str, Any]]:
        endpoint = _endpoint(workspace, payload["endpoint"])
        return [{"field": f"POST {endpoint.url}", "before": None, "after": payload["body"]}]

    def commit(self, payload, idempotency_key, *, workspace, proposal) -> dict[str, Any]:
        endpoint = _endpoint(workspace, payload["endpoint"])
        headers = {"Idempotency-Key": idempotency_key, "X-AIOS-Proposal": str(proposal.pk)}
        status = signed_post(endpoint.url, payload["body"], secret=endpoint.secret, headers=headers)
        return {"status": status, "endpoint": endpoint.name}


def signed_post(url: str, payload: dict[str, Any], *, secret: str, headers: dict[str, str]) -> int:
    """POSTs canonical JSON signed `X-AIOS-Signature: sha256=<hex HMAC of the body>`."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    signed = {"Content-Type": "application/json", "X-AIOS-Signature": f"sha256={signature}"}
    return _post(url, body, {**signed, **headers})


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float = 15) -> int:
    """POSTs; a refusal (4xx) is permanent, a busy or broken server (429, 5xx, no answer) is
    worth another try. 409 for a request sent with an Idempotency-Key means the receiver
    applied that key already: done, not refused."""
    if not url.startswith(("http://", "https://")):
        raise PermanentError(f"not an HTTP URL: {url}")
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        if error.code == 429 or error.code >= 500:
            raise TransientError(f"{url} answered {error.code}") from error
        if error.code == 409 and "Idempotency-Key" in headers:
            return error.code
        raise PermanentError(f"{url} refused it: {error.code}") from error
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise TransientError(f"{url}: {error}") from error


def _endpoint(workspace, name: str):
    from approvals.models import WebhookEndpoint

    endpoint = WebhookEndpoint.objects.filter(workspace=workspace, name=name).first()
    if endpoint is None:
        raise PermanentError(f"no webhook endpoint named {name!r}")
    return endpoint
