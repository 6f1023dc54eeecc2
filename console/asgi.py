"""ASGI entry point: MCP endpoints go to the gateway, everything else to Django (console, API, market)."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()  # before anything that imports models

from .bodylimit import limit_request_bodies  # noqa: E402

django_app = limit_request_bodies(django_app)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.auth import AuthMiddlewareStack  # noqa: E402

from gateway.asgi import app as gateway_app  # noqa: E402
from gateway.routing import is_gateway_path  # noqa: E402

from gateway.tuning import tune_process  # noqa: E402
from gateway.drain import install_under_daphne  # noqa: E402

from .routing import websocket_urlpatterns  # noqa: E402


async def http_app(scope, receive, send):
    # A plain prefix test, not a URLRouter: the gateway's hot path skips Django entirely.
    if is_gateway_path(scope["path"]):
        await gateway_app(scope, receive, send)
    else:
        await django_app(scope, receive, send)


application = ProtocolTypeRouter({
    "http": http_app,
    "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
})

tune_process()
install_under_daphne()
