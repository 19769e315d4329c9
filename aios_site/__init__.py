"""AIOS site: settings, URLs, ASGI and Celery apps, the embedded services and the `aios` CLI."""

from __future__ import annotations
