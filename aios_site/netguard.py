"""The one guard between a URL someone typed and the server's own network.

A URL an owner entered or a brief listed must not reach loopback, the private network or a
cloud's metadata service (169.254.169.254). Checking the name and then letting an HTTP
client resolve it again is not enough: a name can resolve to a public address for the check
and to a private one for the connection (DNS rebinding), and a public page can redirect to a
private one. So `fetch` resolves each host once, checks every address it resolved to,
connects to the checked address itself (the Host header and TLS SNI keep the name), and
follows redirects by hand, checking each hop, up to a limit.

It imports no app: callers pass what the settings allow.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError

MAX_REDIRECTS = 5
REDIRECTS = {301, 302, 303, 307, 308}


class Refused(ValueError):
    """The URL is not fetched: not HTTP, not public, or too many redirects."""

    def __init__(self, message: str, *, host: str = "", address: str = ""):
        super().__init__(message)
        self.host, self.address = host, address


class Unresolved(OSError):
    """The host name does not resolve now (worth trying again later)."""


@dataclass(frozen=True)
class Policy:
    """What may be reached: public addresses only, unless `allow_private`; `allowed` names
    networks reachable even so (an internal model server an operator trusts, say)."""

    allow_private: bool = False
    allowed: tuple[str, ...] = ()

    def permits(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%")[0])
        if self.allow_private or ip.is_global:
            return True
        return any(ip in ipaddress.ip_network(net, strict=False) for net in self.allowed)


def settings_policy(*, allow_private: bool | None = None) -> Policy:
    """The policy the settings give: AIOS_FETCH_PRIVATE_ADDRESSES lets everything through (for
    a server that only ever talks to its own network, and tests); AIOS_FETCH_ALLOWED_NETWORKS
    lets named networks through. `allow_private` overrides the first (a URL the system made)."""
    if allow_private is None:
        allow_private = settings.AIOS_FETCH_PRIVATE_ADDRESSES
    return Policy(
        allow_private=allow_private,
        allowed=tuple(getattr(settings, "AIOS_FETCH_ALLOWED_NETWORKS", ())),
    )


def validate_url(url: str, *, field_name: str, allow_private: bool | None = None) -> None:
    """A URL an owner typed, checked when it is saved: a ValidationError on `field_name` that
    says why (the form shows it; the API answers with it). A name that does not resolve now
    cannot be judged and is accepted: what it resolves to is checked when it is called."""
    policy = settings_policy(allow_private=allow_private)
    if policy.allow_private:
        return
    try:
        check_url(url, policy=policy)
    except Refused as error:
        if not error.address:
            raise ValidationError({field_name: str(error)}) from error
        message = (
            f"{error.host} is not a public address ({error.address}): the server does not "
            "call it (AIOS_FETCH_ALLOWED_NETWORKS can allow it)"
        )
        raise ValidationError({field_name: message}) from error
    except Unresolved:
        pass


@dataclass
class Response:
    status: int
    body: bytes
    url: str  # after redirects
    headers: dict[str, str] = field(default_factory=dict)


def check_url(url: str, *, policy: Policy) -> str:
    """The address `url`'s host resolves to, once every address it resolves to is permitted;
    else Refused (or Unresolved). For validating a URL when it is saved, and before a fetch."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"not an HTTP URL: {url}")
    return check_host(parts.hostname, parts.port or _default_port(parts.scheme), policy=policy)


def fetch(
    method: str,
    url: str,
    *,
    policy: Policy,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
    max_bytes: int | None = None,
    max_redirects: int = MAX_REDIRECTS,
) -> Response:
    """One request, redirects followed by hand; every hop's host is resolved once and checked,
    and the connection goes to that checked address. Reads at most `max_bytes` + 1 bytes."""
    for _hop in range(max_redirects + 1):
        address = check_url(url, policy=policy)
        response = _request_once(method, url, address, body, headers or {}, timeout, max_bytes)
        location = response.headers.get("location")
        if response.status not in REDIRECTS or not location:
            return response
        url = urllib.parse.urljoin(url, location)
        if response.status == 303 or (response.status in (301, 302) and method == "POST"):
            method, body = "GET", None
    raise Refused(f"more than {max_redirects} redirects: not read")


def check_host(host: str, port: int, *, policy: Policy) -> str:
    """The address to connect to for `host`, resolved once, once every address it resolves
    to is permitted; else Refused (or Unresolved). For a client that connects by itself (the
    model servers' HTTP client): it connects to this address, never resolves the name again."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise Unresolved(f"{host}: {error}") from error
    addresses = _unique(info[4][0] for info in infos)
    if not addresses:
        raise Unresolved(f"{host}: no address")
    for address in addresses:
        if not policy.permits(address):
            raise Refused(
                f"{host} is not a public address ({address}): not read", host=host, address=address
            )
    return addresses[0]


def _unique(addresses: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(addresses))


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _request_once(method, url, address, body, headers, timeout, max_bytes) -> Response:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or _default_port(parts.scheme)
    connection_class = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    connection = connection_class(parts.hostname, port, address=address, timeout=timeout)
    path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    try:
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        data = answer.read() if max_bytes is None else answer.read(max_bytes + 1)
        found = {name.lower(): value for name, value in answer.getheaders()}
        return Response(status=answer.status, body=data, url=url, headers=found)
    finally:
        connection.close()


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the address that was checked, never to what the name resolves to later."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the name, as if we had connected by name.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
