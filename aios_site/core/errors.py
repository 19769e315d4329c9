"""One error hierarchy, so that nothing falls between transient, permanent and conflict.

- `TransientError`: worth trying again later (a rate limit, a timeout, a dropped connection,
  the database or Redis away for a moment).
- `PermanentError`: trying again will not help (bad input, a refusal, a bug).
- `Conflict`: the current state does not allow it (409): a decision on a decided proposal,
  an answer to a run that is not waiting.

`is_transient` classifies any exception, ours or a library's, in one place.
"""

from __future__ import annotations


class AiosError(Exception):
    """The base of the errors AIOS raises on purpose."""


class TransientError(AiosError):
    """Worth retrying: a rate limit, a timeout, a dropped connection.

    `retry_after` (seconds) is the server's own word on when to try again, if it gave one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(AiosError):
    """Retrying will not help: bad input, a refused request, a bug."""


class Conflict(AiosError):
    """The current state does not allow this (409): answering a run that is not waiting, a
    taken slug, reviewing an item that is not waiting for review, deciding a decided card."""


class LeaseLost(TransientError):
    """The work's lease was taken over (its holder was paused or too slow): whatever it was
    about to write is fenced off, and the new holder carries on."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (TransientError, TimeoutError, ConnectionError)


def _library_transient() -> tuple[type[BaseException], ...]:
    """Libraries' own words for "try again": the model SDK's rate limits and timeouts, and
    the database or Redis gone for a moment. Imported here only if installed."""
    found: list[type[BaseException]] = []
    try:
        import openai

        found += [openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError]
    except ImportError:
        pass
    try:
        import redis.exceptions

        found += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    except ImportError:
        pass
    try:
        import kombu.exceptions

        found += [kombu.exceptions.OperationalError]
    except ImportError:
        pass
    try:
        import django.db

        found += [django.db.OperationalError, django.db.InterfaceError]
    except ImportError:
        pass
    try:
        import psycopg

        found += [psycopg.OperationalError, psycopg.InterfaceError]
    except ImportError:
        pass
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
