"""App config for the marketplace."""
from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = "Marketplace"

    def ready(self) -> None:
        from console.services.instances import instance_deleting

        from .services import subscriptions_remove_for_instance

        instance_deleting.connect(subscriptions_remove_for_instance, dispatch_uid="market-instance-deleting")
