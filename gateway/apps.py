"""App config for the gateway (it owns no configuration tables)."""
from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "Gateway"
