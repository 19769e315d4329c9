"""ASGI entry point: Django views and the API over HTTP, Channels consumers over websockets."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aios_site.settings.base")
# Served requests each run in a thread of their own: they borrow connections from a pool.
os.environ.setdefault("AIOS_DB_POOL", "1")
# Django must be set up before anything imports models (the consumers do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from agents.llm.local import preload_in_background  # noqa: E402
from aios_site.routing import websocket_urlpatterns  # noqa: E402
from catalog.ingress import WebhookFastLane  # noqa: E402

preload_in_background()  # the memory console's searches embed their query here
application = ProtocolTypeRouter(
    {
        "http": WebhookFastLane(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
