"""AIOS site: settings, URLs, ASGI and Celery apps, the embedded services and the `aios` CLI."""

from __future__ import annotations

# The Celery app is loaded with Django, so tasks sent from web processes use its broker.
from aios_site.celery import app as celery_app

__all__ = ["celery_app"]
