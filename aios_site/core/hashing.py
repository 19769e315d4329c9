"""Canonical JSON: what is hashed is exactly what is stored."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder


def plain(value: Any) -> Any:
    """The value as JSON gives it back (dates and decimals as strings), so what is hashed is
    exactly what is stored."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def digest(value: Any) -> str:
    """SHA-256 of the value's canonical JSON (sorted keys, no spaces): equal values, equal
    digests, whatever order their keys were built in."""
    canonical = json.dumps(
        value, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
