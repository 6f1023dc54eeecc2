"""WebSocket routes: live progress of OpenAPI imports."""
from django.urls import path

from .consumers import ImportProgressConsumer

websocket_urlpatterns: list = [
    path("ws/imports/<int:pk>/", ImportProgressConsumer.as_asgi()),
]
