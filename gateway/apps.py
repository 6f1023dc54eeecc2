"""App config for the gateway (it owns no configuration tables)."""
from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "Gateway"

    def ready(self) -> None:
        from . import egress

        # A bad GATEWAY_EGRESS_ALLOW / GATEWAY_EGRESS_DENY entry stops the process at start-up, naming the entry.
        egress.policy()
