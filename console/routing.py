"""WebSocket routes (live job progress arrives with the OpenAPI import)."""
websocket_urlpatterns: list = []
