"""The remote tier: chat completions from any OpenAI-compatible endpoint, through the SDK.

What real servers do is turned into the engine's terms: rate limits (with their
Retry-After), 5xx, timeouts, dropped streams and empty answers are transient, so the step
retries with backoff; refusals (4xx) are permanent. A missing `usage` is estimated from the
text and marked as such. A failure after the server took the request (a timeout, a cut
stream, an empty answer) is a TransientError marked `billed`, with the usage the server
reported, if any: the provider has billed it. Structured output is validated
(`json_object`); the repair request when the JSON does not parse is the gateway's, which
reserves it.

The server's address is an owner's entry, so every connection the SDK opens goes through
the network guard (aios_site/netguard.py): the name is resolved and checked when the
connection is opened, not when it was saved, and redirects are not followed.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore2
import httpx2

from agents.pipelines import PermanentError, TransientError
from aios_site import netguard


@dataclass(frozen=True)
class Endpoint:
    """Where remote calls go: the settings' provider or one a workspace added."""

    name: str
    base_url: str
    api_key: str = field(repr=False)
    models: dict[str, str]  # role ("small", "large") -> model name
    timeout: float = 60.0
    # Whether its address may be private: None lets the settings decide (a URL an owner
    # typed); True for the installation's own provider, which its operator configured.
    allow_private: bool | None = None
    # Requests it serves at once, from all workers together (agents/llm/endpoints.py).
    concurrency: int = 1

    def model(self, role: str) -> str:
        return self.models.get(role, "")


class InvalidStructuredOutput(PermanentError):
    """The model's answer was not the JSON asked for, even after a repair request."""


def answer_lost(message: str, *, usage: dict[str, Any] | None = None) -> TransientError:
    """The server took the request but its answer did not arrive whole: it billed the call.
    Still a TransientError (the step retries, and says so); `billed_usage` is what the
    server reported (None: unknown, so the gateway charges the call its worst case)."""
    error = TransientError(message)
    error.billed, error.billed_usage = True, usage  # type: ignore[attr-defined]
    return error


def billed(error: BaseException) -> bool:
    return getattr(error, "billed", False)


OnDelta = Callable[[str], None]


@functools.lru_cache(maxsize=32)
def _client(base_url: str, api_key: str, timeout: float, policy: netguard.Policy):
    """One client per endpoint, policy and process: building one costs far more than a call."""
    import openai

    return openai.OpenAI(
        base_url=base_url,
        api_key=api_key or "unset",
        timeout=timeout,
        max_retries=0,  # retries belong to the step's policy, which knows about backoff
        http_client=_guarded_http_client(policy),
    )


def _guarded_http_client(policy: netguard.Policy) -> httpx2.Client:
    """The SDK's HTTP client, connecting only where `policy` permits. It follows no redirect
    (an API has no reason to, and the next hop could be anywhere) and takes no proxy from
    the environment (the connection must go to the address that was checked)."""
    return httpx2.Client(
        transport=_GuardedTransport(policy), follow_redirects=False, trust_env=False
    )


class _GuardedTransport(httpx2.HTTPTransport):
    """httpx2's own transport over a connection pool whose connections are opened by
    `_GuardedBackend`. httpx2 has no argument for a pool's network backend (encode/httpx#3749
    would add one), so the pool it built is replaced by one that has it."""

    def __init__(self, policy: netguard.Policy) -> None:
        super().__init__()
        if not isinstance(getattr(self, "_pool", None), httpcore2.ConnectionPool):
            raise RuntimeError("httpx2.HTTPTransport changed: the guarded pool cannot be set")
        self._pool = httpcore2.ConnectionPool(
            ssl_context=httpx2.create_ssl_context(),
            max_connections=100,  # httpx2's own limits
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(policy),
        )


class _GuardedBackend(httpcore2.NetworkBackend):
    """Opens each connection to the address netguard resolved and checked for its host (a
    name can answer a public address when saved and a private one now), never to what the
    name resolves to next. TLS is started afterwards against the host name, by httpcore, so
    the certificate is checked for the name and SNI names it; the Host header keeps it too."""

    def __init__(self, policy: netguard.Policy) -> None:
        self._policy = policy
        self._sockets = httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        try:
            address = netguard.check_host(host, port, policy=self._policy)
        except netguard.Unresolved as error:  # what a failed lookup is anyway: worth a retry
            raise httpcore2.ConnectError(str(error)) from error
        return self._sockets.connect_tcp(
            address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)


def _refusal(error: netguard.Refused) -> PermanentError:
    shown = (
        error.address if error.host in ("", error.address) else f"{error.address} ({error.host})"
    )
    return PermanentError(
        f"the model server's address {shown} is not public: refused (set "
        "AIOS_FETCH_PRIVATE_ADDRESSES, or its network in AIOS_FETCH_ALLOWED_NETWORKS, to allow it)"
    )


def complete(
    endpoint: Endpoint,
    *,
    model: str,
    messages: list[dict[str, str]],
    json_output: bool = False,
    on_delta: OnDelta | None = None,
    **params: Any,
) -> dict[str, Any]:
    """One chat completion; streamed when `on_delta` wants the text as it arrives. With
    `json_output` the server is asked for a JSON object (`json_object` parses it)."""
    if json_output:
        params["response_format"] = {"type": "json_object"}
    from agents.llm import endpoints

    with endpoints.admitted(endpoint):
        return _create(endpoint, model, messages, params, on_delta)


def _unreachable(error: TransientError) -> TransientError:
    """Marks a failure that says the endpoint is down (no connection, a gateway's 502-504):
    what its circuit breaker counts."""
    error.unreachable = True  # type: ignore[attr-defined]
    return error


def reached(error: BaseException) -> bool:
    """Whether the request reached the provider and it answered with an error status."""
    return getattr(error, "status_code", None) is not None


def _http_error(error: BaseException | None, *names: str) -> bool:
    """Whether `error` is one of the SDK's HTTP library's errors by these class names: the
    library is httpx or httpx2 depending on the SDK's release, so it is not imported here."""
    return error is not None and any(cls.__name__ in names for cls in type(error).__mro__)


def _create(endpoint, model, messages, params, on_delta=None) -> dict[str, Any]:
    import openai

    policy = netguard.settings_policy(allow_private=endpoint.allow_private)
    client = _client(endpoint.base_url, endpoint.api_key, endpoint.timeout, policy)
    try:
        if on_delta is not None:
            streamed = _streamed(client, model, messages, params, on_delta)
            content, usage, answered_by, finish_reason = streamed
        else:
            response = client.chat.completions.create(model=model, messages=messages, **params)
            choice = response.choices[0] if response.choices else None
            content = choice.message.content if choice else None
            usage, answered_by = response.usage, response.model
            finish_reason = choice.finish_reason if choice else None
    except netguard.Refused as error:  # raised where the connection would have been opened
        raise _refusal(error) from error
    except openai.RateLimitError as error:
        raise _status(
            TransientError(
                f"rate limited by the model endpoint: {error}",
                retry_after=_retry_after(error.response),
            ),
            error,
        ) from error
    except openai.APITimeoutError as error:
        if _http_error(error.__cause__, "ConnectTimeout", "PoolTimeout"):
            raise _unreachable(TransientError(f"{type(error).__name__}: {error}")) from error
        # Sent, and not answered in time: the server did (some of) the work. The client
        # closed the connection, which is how a server learns to stop generating.
        raise answer_lost(f"no answer ({type(error).__name__}: {error})") from error
    except openai.InternalServerError as error:
        failure = _status(TransientError(f"{type(error).__name__}: {error}"), error)
        gateway_down = error.status_code in (502, 503, 504)
        raise (_unreachable(failure) if gateway_down else failure) from error
    except openai.APIConnectionError as error:
        if isinstance(error.__cause__, netguard.Refused):  # an SDK that wraps what it got
            raise _refusal(error.__cause__) from error
        raise _unreachable(TransientError(f"{type(error).__name__}: {error}")) from error
    except openai.APIStatusError as error:
        raise _status(
            PermanentError(f"the model endpoint refused the request: {error}"), error
        ) from error
    if not content:
        reported = _usage(usage, messages, "") if usage is not None else None
        raise answer_lost("the model returned an empty answer", usage=reported)
    return {
        "model": answered_by or model,
        "content": content,
        "usage": _usage(usage, messages, content),
        # "length": cut off at max_tokens; the caller decides whether to ask again.
        "finish_reason": finish_reason,
    }


def _streamed(client, model, messages, params, on_delta: OnDelta):
    """Content, usage (the last chunk carries it when the server supports it), model and
    finish reason."""
    import openai

    stream = client.chat.completions.create(
        model=model,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        **params,
    )
    parts: list[str] = []
    usage = answered_by = finished = None
    try:
        for chunk in stream:
            answered_by = chunk.model or answered_by
            usage = chunk.usage or usage
            for choice in chunk.choices or ():
                finished = choice.finish_reason or finished
                delta = choice.delta.content if choice.delta else None
                if delta:
                    parts.append(delta)
                    on_delta("".join(parts))
    except Exception as error:
        if not (isinstance(error, openai.APIError) or _http_error(error, "TransportError")):
            raise
        # the answer had begun: billed
        raise answer_lost(f"the model's stream broke off: {error}") from error
    if finished is None:  # the connection closed before the server said the answer ended
        reported = _usage(usage, messages, "".join(parts)) if usage is not None else None
        raise answer_lost("the model's stream ended before its answer did", usage=reported)
    return "".join(parts), usage, answered_by, finished


def _status(failure: Exception, error) -> Exception:
    """Our error for the provider's error status, keeping the status code: the request
    reached the provider (the ledger records it)."""
    failure.status_code = error.status_code  # type: ignore[attr-defined]
    return failure


def _usage(usage, messages: list[dict[str, str]], content: str) -> dict[str, Any]:
    if usage is not None and usage.prompt_tokens is not None:
        return {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens or 0,
        }
    # Some servers leave usage out; about four characters a token is the usual estimate.
    prompt_chars = sum(len(str(m.get("content", ""))) for m in messages)
    return {
        "prompt_tokens": math.ceil(prompt_chars / 4),
        "completion_tokens": math.ceil(len(content) / 4),
        "estimated": True,
    }


def _retry_after(response) -> float | None:
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the step's own backoff applies


def repair_messages(
    messages: list[dict[str, str]], content: str, error: ValueError
) -> list[dict[str, str]]:
    """The one repair request: the invalid answer, and what was wrong with it."""
    return [
        *messages,
        {"role": "assistant", "content": content},
        {
            "role": "user",
            "content": f"That was not a valid JSON object ({error}). "
            "Answer again with only the JSON object.",
        },
    ]


def json_object(content: str) -> dict[str, Any]:
    value = json.loads(content)
    if not isinstance(value, dict):
        raise ValueError("a JSON object was expected")
    return value
