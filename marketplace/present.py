"""What a subscriber is shown: endpoint URLs and client configurations, with the key filled in when it is known."""
from __future__ import annotations

from console.views.endpoints import client_configs, credential_placeholder, primary_endpoint

from .models import Subscription

KEY_PLACEHOLDER = "<YOUR_API_KEY>"


def subscription_endpoints(subscription: Subscription, base_url: str) -> dict[str, str]:
    server = subscription.mcp_server
    if server is None:
        return {"streamable_http": "", "sse": ""}
    endpoint = primary_endpoint(server, base_url)
    return {"streamable_http": endpoint.streamable_http, "sse": endpoint.sse}


def subscription_client_configs(subscription: Subscription, base_url: str, api_key: str | None) -> list[dict]:
    """The console's ready-to-paste configurations; the key replaces the placeholder when it is shown (once)."""
    server = subscription.mcp_server
    if server is None:
        return []
    configs = client_configs(server, primary_endpoint(server, base_url))
    placeholder = credential_placeholder(server)
    for config in configs:
        if api_key:
            config["text"] = config["text"].replace(placeholder, api_key)
            config["note"] = "The key is filled in: keep this configuration private."
        else:
            config["note"] = (f"Replace {placeholder} with this subscription's key (shown once; rotate it on "
                              "My subscriptions if it is lost).")
    return configs
