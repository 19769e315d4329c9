"""Secrets at rest (model provider keys, store tokens): Fernet, keyed from the settings.

The key is `AIOS_ENCRYPTION_KEY` when set (so it can be rotated separately), else derived
from SECRET_KEY. A value encrypted under another key cannot be read back: the caller is
told to enter the secret again rather than given garbage.
"""

from __future__ import annotations

import base64
import functools
import hashlib

from django.conf import settings


class UnreadableSecret(Exception):
    """Encrypted under a key this installation no longer has."""


def _fernet():
    return _fernet_for(settings.AIOS_ENCRYPTION_KEY or settings.SECRET_KEY)


@functools.lru_cache(maxsize=4)
def _fernet_for(material: str):
    from cryptography.fernet import Fernet

    digest = hashlib.sha256(f"aios-secrets:{material}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode() if plaintext else ""


def decrypt(token: str) -> str:
    from cryptography.fernet import InvalidToken

    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise UnreadableSecret(
            "a stored secret cannot be decrypted with this installation's key; enter it again"
        ) from error


def hint(plaintext: str) -> str:
    """What the UI may show of a secret: its last four characters."""
    return f"…{plaintext[-4:]}" if len(plaintext) >= 8 else "set" if plaintext else ""


def encrypted(field: str) -> property:
    """A model attribute that reads and writes the secret kept encrypted in `field`."""

    def read(instance) -> str:
        return decrypt(getattr(instance, field))

    def write(instance, value: str) -> None:
        setattr(instance, field, encrypt(value))

    return property(read, write, doc=f"the secret stored encrypted in {field}")
