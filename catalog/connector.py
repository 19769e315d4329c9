"""Talking to a shop's Admin REST API (Shopify's, or the store simulator's).

Every write carries an `Idempotency-Key`, the same on every attempt, so a retry after a lost
answer cannot apply a change twice. A rate limit (429), a server error (5xx), a timeout or a
dropped connection is tried again, waiting as long as the shop's `Retry-After` says, else
0.5 s, 1 s, 2 s …; after the last attempt it raises TransientError, for the caller (a Celery
task) to try again later. Any other refusal is a PermanentError carrying Shopify's `errors`.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aios_site import netguard
from aios_site.core import lease
from aios_site.core.errors import PermanentError, TransientError
from catalog.models import StoreConnection
from catalog.services import DEMO_SHOP


@dataclass(frozen=True)
class _Request:
    method: str
    url: str
    body: bytes | None
    headers: dict[str, str]


class ShopifyConnector:
    def __init__(
        self,
        connection: StoreConnection,
        *,
        attempts: int = 5,
        timeout: float = 15,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = 30,
    ) -> None:
        origin = connection.api_base_url.rstrip("/")
        if urlsplit(origin).scheme not in ("http", "https"):
            raise PermanentError(f"the shop's API address is not an http(s) URL: {origin!r}")
        self.base_url = f"{origin}/admin/api/{connection.api_version}"
        # Checked again at every call (and hop): the address a name resolves to can change
        # after it was saved. The demo's shop is its simulator, on this machine.
        demo = connection.shop_domain == DEMO_SHOP
        self.policy = netguard.settings_policy(allow_private=True if demo else None)
        self._token = connection.access_token
        self.attempts = max(attempts, 1)
        self.timeout = timeout
        self.sleep = sleep
        self.max_wait = max_wait

    def product_get(self, product_id: int) -> dict[str, Any]:
        return _field(self._call("GET", f"products/{int(product_id)}.json"), "product")

    def product_update(
        self, product_id: int, fields: dict[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        product_id = int(product_id)
        body = {"product": {**fields, "id": product_id}}
        answer = self._call("PUT", f"products/{product_id}.json", body, key=idempotency_key)
        return _field(answer, "product")

    def variant_update(
        self, variant_id: int, fields: dict[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        variant_id = int(variant_id)
        body = {"variant": {**fields, "id": variant_id}}
        answer = self._call("PUT", f"variants/{variant_id}.json", body, key=idempotency_key)
        return _field(answer, "variant")

    def _call(
        self, method: str, path: str, body: dict | None = None, *, key: str | None = None
    ) -> dict[str, Any]:
        request = _Request(
            method=method,
            url=f"{self.base_url}/{path}",
            body=None if body is None else json.dumps(body).encode(),
            headers=self._headers(key),
        )
        error: TransientError | None = None
        for attempt in range(1, self.attempts + 1):
            if error is not None:
                self.sleep(self._wait(attempt, error.retry_after))
            try:
                return self._send(request)
            except TransientError as caught:
                error = caught
        assert error is not None
        raise TransientError(
            f"{error} (gave up after {self.attempts} attempts)", retry_after=error.retry_after
        )

    def _headers(self, key: str | None) -> dict[str, str]:
        headers = {
            "X-Shopify-Access-Token": self._token,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        if key:
            headers["Idempotency-Key"] = key
        return headers

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        """Before attempt 2, 3 …: the shop's own word when it gave one, else 0.5 s doubling."""
        wait = retry_after if retry_after is not None else 0.5 * 2 ** (attempt - 2)
        return min(wait, self.max_wait)

    def _send(self, request: _Request) -> dict[str, Any]:
        where = f"{request.method} {request.url}"
        if request.method != "GET":
            lease.guard()  # each write, retries too: a commit that lost its lease sends nothing
        try:
            response = netguard.fetch(
                request.method,
                request.url,
                policy=self.policy,
                body=request.body,
                headers=request.headers,
                timeout=self.timeout,
            )
        except netguard.Refused as refused:
            raise PermanentError(f"{where}: {refused}") from refused
        except (OSError, http.client.HTTPException) as error:
            raise TransientError(f"{where}: {error}") from error
        if 200 <= response.status < 300:
            return _json(response.body, where)
        return _refused(response, where)


def _refused(response: netguard.Response, where: str) -> dict[str, Any]:
    """An error status: worth retrying (429, 5xx), already applied (returns the original
    answer), or refused for good."""
    body, code = _json_or_none(response.body), response.status
    if code == 429 or code >= 500:
        raise TransientError(f"{where} answered {code}", retry_after=_retry_after(response.headers))
    if code == 409 and _already_applied(body):
        return body["original"]
    raise PermanentError(f"{where} answered {code}: {_errors_text(body)}")


def _already_applied(body: Any) -> bool:
    """The shop saw this Idempotency-Key before and sends back what it answered then."""
    return (
        isinstance(body, dict)
        and "idempotency" in str(body.get("errors", "")).lower()
        and isinstance(body.get("original"), dict)
    )


def _retry_after(headers: dict[str, str]) -> float | None:
    """Retry-After in seconds (Shopify sends e.g. "2.0"); None when absent or a date."""
    try:
        seconds = float(headers.get("retry-after", ""))
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def _errors_text(body: Any) -> str:
    """Shopify's `errors`: a string, or {"field": ["message", …]}."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, dict):
        return "; ".join(
            f"{name}: {', '.join(map(str, messages)) if isinstance(messages, list) else messages}"
            for name, messages in errors.items()
        )
    return str(errors) if errors else "no details given"


def _json(raw: bytes, where: str) -> dict[str, Any]:
    body = _json_or_none(raw)
    if not isinstance(body, dict):
        raise PermanentError(f"{where} answered something that is not a JSON object")
    return body


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _field(answer: dict[str, Any], name: str) -> dict[str, Any]:
    value = answer.get(name)
    if not isinstance(value, dict):
        raise PermanentError(f"the shop's answer has no {name!r} object")
    return value
