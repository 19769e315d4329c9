"""One error hierarchy, so that nothing falls between transient, permanent and conflict.

- `TransientError`: worth trying again later (a rate limit, a timeout, a dropped connection,
  the database or Redis away for a moment).
- `PermanentError`: trying again will not help (bad input, a refusal, a bug).
- `Conflict`: the current state does not allow it (409): a decision on a decided proposal,
  an answer to a run that is not waiting.

`is_transient` classifies any exception, ours or a library's, in one place.
"""

from __future__ import annotations

import importlib


class AiosError(Exception):
    """The base of the errors AIOS raises on purpose."""


class TransientError(AiosError):
    """Worth retrying: a rate limit, a timeout, a dropped connection.

    `retry_after` (seconds) is the server's own word on when to try again, if it gave one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(TransientError):
    """A service the work needs is down (a model endpoint's circuit breaker is open): the work
    waits for it, and resumes by itself at `retry_after`; the wait is not a failed attempt."""


class PermanentError(AiosError):
    """Retrying will not help: bad input, a refused request, a bug."""


class Conflict(AiosError):
    """The current state does not allow this (409): answering a run that is not waiting, a
    taken slug, reviewing an item that is not waiting for review, deciding a decided card."""


class LeaseLost(TransientError):
    """The work's lease was taken over (its holder was paused or too slow): whatever it was
    about to write is fenced off, and the new holder carries on."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (TransientError, TimeoutError, ConnectionError)


# Libraries' own words for "try again": the model SDK's rate limits and timeouts, and the
# database, the broker or Redis gone for a moment. Each is looked up only if installed.
LIBRARY_TRANSIENT = {
    "openai": ("RateLimitError", "APITimeoutError", "APIConnectionError"),
    "redis.exceptions": ("ConnectionError", "TimeoutError"),
    "kombu.exceptions": ("OperationalError",),
    "django.db": ("OperationalError", "InterfaceError"),
    "psycopg": ("OperationalError", "InterfaceError"),
}


def _library_transient() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = []
    for module_name, names in LIBRARY_TRANSIENT.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found += [getattr(module, name) for name in names]
    return tuple(found)


_LIBRARY_TRANSIENT: tuple[type[BaseException], ...] | None = None


def is_transient(error: BaseException) -> bool:
    global _LIBRARY_TRANSIENT
    if isinstance(error, PermanentError | Conflict):
        return False
    if isinstance(error, TRANSIENT_ERRORS):
        return True
    if _LIBRARY_TRANSIENT is None:
        _LIBRARY_TRANSIENT = _library_transient()
    return isinstance(error, _LIBRARY_TRANSIENT)


def describe(error: BaseException) -> str:
    """An error as a card or a page shows it: ours by their message, any other with its type
    (a bare KeyError's message alone says nothing)."""
    if isinstance(error, AiosError):
        return str(error)
    return f"{type(error).__name__}: {error}"
