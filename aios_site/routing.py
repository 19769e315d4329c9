from __future__ import annotations

from django.urls import path

from aios_site.consumers import RunConsumer, WorkspaceConsumer

websocket_urlpatterns = [
    path("ws/w/<slug:slug>/", WorkspaceConsumer.as_asgi()),
    path("ws/w/<slug:slug>/runs/<int:run_id>/", RunConsumer.as_asgi()),
]
