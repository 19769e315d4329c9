"""Test settings: one embedded PostgreSQL (with pgvector) and one Valkey for the test session.

With DATABASE_URL and REDIS_URL set, those are used instead. The URLs are exported so
processes the tests start (workers, the launcher's children) reach the same services.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
    from aios_site import embedded

    _data_dir = Path(tempfile.mkdtemp(prefix="aios-test-"))
    _services = embedded.start(_data_dir)
    atexit.register(shutil.rmtree, _data_dir, ignore_errors=True)
    atexit.register(_services.stop)  # atexit runs last-in first-out: stop, then remove
    for _name, _url in _services.environ().items():
        os.environ.setdefault(_name, _url)  # a configured URL wins over the embedded one
    os.environ.setdefault("AIOS_DATA_DIR", str(_data_dir))
    # For the test session's setup (and tests that play someone with superuser rights):
    # the application itself connects as its own login, no superuser.
    os.environ.setdefault("AIOS_TEST_ADMIN_DATABASE_URL", _services.admin_database_url)

# The tests' research pages are served on loopback, to this process and to the workers it
# starts; one test turns this off again.
os.environ.setdefault("AIOS_FETCH_PRIVATE_ADDRESSES", "true")
os.environ.setdefault("AIOS_SECRET_KEY", "test-secret-key-not-for-production-" + "x" * 20)

from aios_site.settings.base import *  # noqa: F403

DEBUG = False
# Fast hashing in tests; PBKDF2 too, for accounts a real server process must accept.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# Threads that serve websockets in tests must not keep connections the teardown would wait on.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
