"""WSGI entry point, for the admin and API behind a plain WSGI server (websockets need ASGI)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aios_site.settings.base")
application = get_wsgi_application()
