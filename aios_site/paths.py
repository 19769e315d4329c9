"""Where AIOS keeps its data. Settings and the launcher import it: it must not import Django."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import platformdirs

BASE_DIR = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The data directory: `AIOS_DATA_DIR` if set, else the per-user data dir."""
    configured = os.environ.get("AIOS_DATA_DIR")
    path = Path(configured) if configured else platformdirs.user_data_path("aios", appauthor=False)
    return path.expanduser().resolve()


def read_or_create_secret(path: Path, *, length: int = 50) -> str:
    """A secret kept in a file only its owner can read, created on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(length)
    # O_EXCL: if two processes race on first start, one of them wins and the other reads its value.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value
