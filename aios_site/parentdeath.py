"""Children that end with their parent, even when the parent is killed outright."""

from __future__ import annotations

import ctypes
import signal


def _load_libc():
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # not Linux: children simply do not get the parent-death signal
        return None


# Loaded here, in the parent: between fork and exec the child must not take loader locks.
_LIBC = _load_libc()
_PR_SET_PDEATHSIG = 1


def terminate_with_parent() -> None:
    """Linux, as a `preexec_fn`: deliver SIGTERM to this child if its parent dies, even by
    SIGKILL."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
