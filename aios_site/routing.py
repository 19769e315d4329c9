from __future__ import annotations

from django.urls import path

from aios_site.consumers import WorkspaceConsumer

websocket_urlpatterns = [
    path("ws/w/<slug:slug>/", WorkspaceConsumer.as_asgi()),
]
